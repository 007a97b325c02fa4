"""Production monitoring of the served student, from the gateway's request log: traffic, fallback, shadow agreement,
the label-free accuracy estimate, drift of live inputs vs the training version, latency, cost, alarms against the
quality bar, and the re-distill plan an alarm proposes. No Textual here (``distill monitor`` and the studio's
Production screen are the front-ends)."""
