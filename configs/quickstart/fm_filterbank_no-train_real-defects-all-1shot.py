# The offline quick-start model (training-free prototype matcher, paper Sec.
# 5.1.2, on the classical filter bank) on the three real defect datasets of
# ../shared/data, with the GFDS protocol and the Table-4 report:
#
#   python tools/test.py \
#       configs/quickstart/fm_filterbank_no-train_real-defects-all-1shot.py \
#       --out work_dirs/real_defects
#
# Writes metrics.json and gfds_report.json (Table-4 row with FPS) to --out.
_base_ = [
    '../_base_/models/fm_filterbank.py',
    '../_base_/datasets/real_defects.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
test_evaluator = dict(method_name='matcher-filterbank')
