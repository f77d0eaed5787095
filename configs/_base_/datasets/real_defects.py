# Three small real defect datasets of ../shared/data (magnetic tile,
# NEU-Seg, CrackForest; see docs/benchmark.md), declared as products with
# their mask conventions in fdseg/benchmarks/real_defects.py:
#   magnetic_tile  anti-aliased 0..255 masks, fg = mask > 127
#   neu_seg        value-indexed masks (1 inclusion, 2 patches, 3 scratches)
#   crackforest    0/255 masks (thin cracks; the GFDS threshold, > 30)
# Same protocol as GFDS: 1-way 1-shot, every image the query once, 256x256.
_base_ = ['./gfds_all.py']

data_root = '../shared/data'
test_dataloader = dict(
    dataset=dict(data_root=data_root, split='all', benchmark='real_defects')
)
