"""Inference: the predictor (image + cloud + instruction -> contacts and ranked grasps) and
scene questions (caption, OCR, VQA). Imports the network and grasp planning, never training,
data generation, evaluation or ROS.
"""
