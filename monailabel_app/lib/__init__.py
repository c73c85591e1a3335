"""The voxcause MONAI Label app's library: configs (one per task), infer tasks, and what they share."""
