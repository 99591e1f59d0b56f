"""One module per lab: the numbers and the narration the lab shows (labs hold only prose and controls).

affine_map          lab 01
calibration         lab 02
schemes             lab 03
full_model          lab 04
sensitivity         lab 05
direct_manipulation lab 06
ptq_vs_qat          lab 08 (+ ptq_vs_qat_decision, training_dynamics)
"""
