"""Image scraper for the gallery: the figures a code block leaves behind.

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
