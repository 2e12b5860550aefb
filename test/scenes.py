"""Scenes that tests in more than one folder use (test/ is on pytest's pythonpath)."""

# A validation scene (not a test split's) whose 80 mm grasps include openings wider than
# 40 mm: measured with the shipped model, 2 of its 10 grasps 49 and 56 mm wide (the 40 mm
# gripper: 9 grasps, all 30 mm, the widest it plans with 5 mm of clearance either side).
WIDE_SCENE = ("val", 2)
