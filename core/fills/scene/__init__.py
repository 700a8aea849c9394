"""Fill gaps by learning from the scene itself, self-validated (`fill_scene.fill_scene`).

Real cloud shapes are laid on the scene's clear pixels, split into training, selection and
report blocks; classical fills, bundled models and a network adapted to the scene compete; the
best on the selection blocks fills the real gaps, and the report blocks, used for nothing else,
say how good it is on this scene.
"""
