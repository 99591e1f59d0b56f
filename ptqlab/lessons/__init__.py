"""One module per lab: the numbers and the narration the lab shows (labs hold only prose and controls).

affine_map          lab 01
calibration         lab 02 (calibration_text: goals, recap, self-checks, sentences from the measured values;
                    vendors: TensorRT's and ONNX Runtime's calibrators side by side)
schemes             lab 03 (schemes_text: its tables and sentences, from the measured values)
full_model          lab 04 (full_model_text: goals, recap, diagram, sentences; full_model_checks: self-checks;
                    exercises_full_model (+ _mistakes): the dynamic int8 Linear exercise)
sensitivity         lab 05 (calibration_selection: where calibration-set selection matters, a glitched pool)
direct_manipulation lab 06
ptq_vs_qat          lab 08 (+ ptq_vs_qat_decision, training_dynamics; ptq_vs_qat_questions: self-checks, recap;
                    exercises_qat: the straight-through-estimator exercise)
beyond_rtn          lab 07 (beyond_rtn_questions: self-checks and recap; exercises_beyond_rtn: bias
                    correction, exercises_smoothquant: SmoothQuant's factor, the coding exercises)
real_integers       lab 09 (real_integers_exercise: the requantize exercise; real_integers_questions:
                    self-checks and recap)

Shared by the labs:
questions           labs 01, 03, 05, 06's self-check questions, every expected answer computed by ptqlab
exercises           coding exercises: run the student's code in a child process with a time limit, and the
                    question / exercise views; one exercises_* module per lab checks its exercise
controls            a control with its "Try this" hint; marimo's progress bar
models              the labs' trained digits models and their test accuracy
"""
