"""The one trainer, its optimizer steps, loss weighting, checkpoints and the `Solution`."""
