"""Fills: classical (temporal interpolation, histogram matching, spatial IDW), time series
(linear, Whittaker, 3-D partial convolutions), Deep Image Prior, other dates on the target grid."""
