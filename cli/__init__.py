"""The `gapfill` command line: the main job of the plugin without QGIS, thin over `core/`
(and `training/` for `gapfill train`), like the Processing algorithms; never imports qgis.

    gapfill mask IMAGE -o MASK [--method spectral|scl|probability|values|nodata]
    gapfill fill {temporal,spatial,model} IMAGE -o OUTPUT [--gap-mask MASK] …
    gapfill timeseries RASTER… -o OUTPUT [--method linear|whittaker|model]
    gapfill evaluate REFERENCE FILLED… -o FOLDER
    gapfill describe [MODEL]
    gapfill train {train,export,evaluate,info,make-dataset} …

Layout: `main` (parser, exit codes, errors), `session` (progress bars, Ctrl-C, output),
`options` (shared option types and output checks), `fill` (the fill methods, one entry each),
`commands` (the other commands).
"""
