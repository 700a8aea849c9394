"""Gap masks: rules on Scene Classification, probabilities, values and no-data, the spectral
cloud/shadow score, and field-made cloud detectors (ukis-csmask, s2cloudless) run at their own
resolution; "automatic" picks the best one installed."""
