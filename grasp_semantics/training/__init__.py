"""Training: the grasp network, the grasp scorer and the describe head, each from a YAML
config, with the run configuration, schedule and distributed helpers they share."""
