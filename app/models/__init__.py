"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.base import Base, ExactDecimal, UTCDateTime
from app.models.market import (
    BookSnapshot,
    Kline,
    LatestTicker,
    Market,
    TickerSnapshot,
    UniverseSnapshot,
)
from app.models.operator import (
    AdminSession,
    Counter,
    LoginAttempt,
    OperatorAction,
    StageLatencyBucket,
    StageLatencyTotal,
)
from app.models.runs import MarketDataRun
from app.models.trading import (
    AlertRecord,
    EquitySnapshot,
    Evaluation,
    FillRecord,
    Order,
    Portfolio,
    PositionRecord,
    RiskDecisionRecord,
    SignalRecord,
    TaskRun,
)

__all__ = [
    "AdminSession",
    "AlertRecord",
    "Base",
    "BookSnapshot",
    "Counter",
    "EquitySnapshot",
    "Evaluation",
    "ExactDecimal",
    "FillRecord",
    "Kline",
    "LatestTicker",
    "LoginAttempt",
    "Market",
    "MarketDataRun",
    "OperatorAction",
    "Order",
    "Portfolio",
    "PositionRecord",
    "RiskDecisionRecord",
    "SignalRecord",
    "StageLatencyBucket",
    "StageLatencyTotal",
    "TaskRun",
    "TickerSnapshot",
    "UTCDateTime",
    "UniverseSnapshot",
]
