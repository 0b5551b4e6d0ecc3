"""Transaction data layer: validation, RFM summaries, calibration/holdout splits, compression."""
