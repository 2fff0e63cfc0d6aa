"""What the notebooks tell with: experiment runs, reading runs back, tables beside the paper's
numbers, ablations, figures and the demo. Nothing below `analysis` imports it."""
