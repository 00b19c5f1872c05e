"""Tasks used by the job tests: they report progress and return a value, or fail."""
from backoffice.jobs import report_progress


def count_to(n: int) -> int:
    """Report each step and return n."""
    for step in range(1, n + 1):
        report_progress(step=step, total=n)
    return n


def explode(message: str) -> None:
    """Fail with the given message."""
    raise RuntimeError(message)
