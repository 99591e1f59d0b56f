"""One module per lab: the numbers and the narration the lab shows (labs hold only prose and controls).

affine_map          lab 01
calibration         lab 02 (calibration_text: goals, recap, self-checks, sentences from the measured values)
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

Shared by labs 01, 03, 05, 06:
questions           the self-check questions, every expected answer computed by ptqlab
exercises           coding exercises: run the student's code in a child process with a time limit, and the
                    question / exercise views; exercises_affine (lab 01, 06), exercises_calibration (lab 02),
                    exercises_schemes (lab 03),
                    exercises_sensitivity (lab 05) check one exercise each
"""
