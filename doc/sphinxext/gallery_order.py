"""Reading order of the gallery: from first steps to specific features."""

ORDER = [
    "plot_quick_start.py",
    "plot_covariate_shift.py",
    "plot_text_pipeline.py",
    "plot_interpretability.py",
    "plot_updatability.py",
]


def example_order(filename):
    """Sort key for sphinx-gallery: listed files first, others by name."""
    if filename in ORDER:
        return (ORDER.index(filename), filename)
    return (len(ORDER), filename)
