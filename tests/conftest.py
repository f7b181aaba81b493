"""Hypothesis profiles: 'dev' (default, quick) and 'ci' (more examples, derandomized)."""

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("dev")  # CI runs: pytest --hypothesis-profile=ci
