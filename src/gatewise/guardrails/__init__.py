"""Guardrails: detectors for prompt injection, PII, secrets, harmful output and
system-prompt leaks; profiles of rules that apply them; the corridor steps that
run them on requests, replies and streams."""
