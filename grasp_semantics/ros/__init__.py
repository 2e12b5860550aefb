"""The ROS 2 layer: the lifecycle node, message conversion, pairing, bag replay and the demo.

The only part of the package that imports rclpy and ROS messages.
"""
