"""Target assignment (Hungarian matching, denoising) and box decoders."""
