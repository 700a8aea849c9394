"""Gap masks: rules on Scene Classification, probabilities, values and no-data, and the
spectral cloud/shadow score."""
