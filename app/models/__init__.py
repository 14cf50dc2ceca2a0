"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.base import Base, ExactDecimal, UTCDateTime
from app.models.market import BookSnapshot, Kline, Market, TickerSnapshot
from app.models.operator import (
    AdminSession,
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
    "EquitySnapshot",
    "Evaluation",
    "ExactDecimal",
    "FillRecord",
    "Kline",
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
]
