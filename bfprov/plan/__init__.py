"""Pure planning: (desired, observed, now) -> a Plan whose every change has its reasons."""
