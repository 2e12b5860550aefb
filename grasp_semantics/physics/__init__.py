"""Physics as the judge of grasps: each grasp closed, lifted and shaken in MuJoCo.

``shapes`` turns the generator's objects into convex pieces, ``trial`` builds a scene and a
floating parallel-jaw gripper and runs one grasp, ``judge`` runs many trials in worker
processes for ``grasp-semantics evaluate --physics``; ``evaluation/show_trial.py`` draws a
trial to PNG frames (``grasp-semantics show-trial``). Nothing here imports ROS or the model.
"""
