"""Budget alerts: which thresholds a budget crossed (once per period, across replicas)
and the signed webhook deliveries that announce them."""

from gatewise.alerts.thresholds import ThresholdTracker, budget_event
from gatewise.alerts.webhooks import WebhookSender, sign, verify_signature

__all__ = ["ThresholdTracker", "WebhookSender", "budget_event", "sign", "verify_signature"]
