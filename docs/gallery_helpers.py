"""Helpers of the gallery (sphinx-gallery): the order of the examples, and an image scraper
for the figures a code block leaves behind.

``pe.plotting`` builds its figures with ``matplotlib.figure.Figure`` directly, not through
``pyplot``, so sphinx-gallery's own matplotlib scraper (which asks ``pyplot`` for its open
figures) does not see them. This one takes every ``Figure`` bound to a name of the example's
namespace that it has not saved before, plus any open ``pyplot`` figure.
"""
import weakref

from sphinx_gallery.scrapers import figure_rst


def scrape_figures(block, block_vars, gallery_conf, **kwargs):
    """Save the new figures of one code block; return the reST that shows them."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    seen = block_vars.setdefault("pgm_energy_saved_figures", weakref.WeakSet())
    figures = [value for value in block_vars["example_globals"].values()
               if isinstance(value, Figure)]
    figures += [plt.figure(number) for number in plt.get_fignums()]
    paths = []
    for figure in figures:
        if figure in seen:
            continue
        seen.add(figure)
        path = next(block_vars["image_path_iterator"])
        figure.savefig(path, dpi=100, bbox_inches="tight")
        paths.append(path)
    plt.close("all")
    return figure_rst(paths, gallery_conf["src_dir"])


class ExampleOrder:
    """Sort key of the gallery: the examples in reading order (first learning, then sampling
    and checking, then estimating log Z), any other script after them by name."""

    ORDER = ("plot_rbm_bars_and_stripes.py", "plot_ising_gibbs.py", "plot_potts_ring.py",
             "plot_ais_log_z.py")

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __call__(self, filename):
        name = filename.rsplit("/", 1)[-1]
        return (self.ORDER.index(name), "") if name in self.ORDER else (len(self.ORDER), name)
