"""Alerts: standing rules per camera, evaluated on every stored clip, firings delivered by webhook and SSE
(docs/architecture.md, "Alerts")."""
