"""Headless PyTorch training package (datasets, networks, losses, loop, export); never imports
qgis, and imports torch only in the modules that train (not at package import).

    python -m <plugin>.training make-dataset data/ --sen12mscr ../shared/data/sen12mscr
    python -m <plugin>.training train --dataset data/ --output run/ --architecture unet-fusion
    python -m <plugin>.training export run/best.pt model.onnx
    python -m <plugin>.training evaluate model.onnx --dataset data/
    python -m <plugin>.training info --architecture dsen2cr

Layout by role: `config` (options, YAML), `datasets` (patch datasets, augmentation, simulated
gaps), `networks/` (architectures and their registry), `losses`, `loop` (training), `validation`
(metrics, the collapsed-band guard), `assessment` (the baseline verdict of every run),
`checkpoints`, `curves`, `export` (ONNX and model card), `evaluate`, `make_dataset`, `cli`.
"""
