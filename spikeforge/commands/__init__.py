"""The commands that read a training run or a checkpoint (the command-line layer, above :mod:`spikeforge.train`).

- ``spikeforge eval``: :func:`~spikeforge.commands.checkpoint.evaluate_checkpoint`;
- ``spikeforge plot``: :func:`~spikeforge.commands.plot.plot_run` (curves, firing rates, a raster of a run);
- ``spikeforge analyze``: :func:`~spikeforge.commands.analyze.analyze` (firing-rate figures and a summary);
- ``spikeforge quantize | energy | export``: a checkpoint's model through :mod:`spikeforge.tools`.

Their parsers: :mod:`spikeforge.commands.subcommands`; a checkpoint back to a model:
:func:`~spikeforge.commands.checkpoint.load_trained`. :mod:`spikeforge.tools` keeps what takes a model.
"""
from spikeforge.commands.checkpoint import evaluate_checkpoint, load_test_set, load_trained
from spikeforge.commands.subcommands import add_eval_parser, add_plot_parser, add_tool_parsers

__all__ = ["add_eval_parser", "add_plot_parser", "add_tool_parsers", "evaluate_checkpoint", "load_test_set",
           "load_trained"]
