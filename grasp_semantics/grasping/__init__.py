"""Grasp geometry and planning: the gripper, grasps planned across a part, decoding and NMS.

Between the network (``models/``, which it may import) and the applications: nothing here
trains, generates data or imports ROS.
"""
