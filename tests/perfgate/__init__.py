"""Test-only apps for measuring the regression gate: the real apps, made slower on purpose."""
