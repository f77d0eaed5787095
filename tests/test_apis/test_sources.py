"""ImageSource: every form a user passes, names, and unreadable files."""

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from fdseg.apis import ImageSource


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {}
    for name in ('a.png', 'b.jpg', 'sub/c.png'):
        img = rng.integers(0, 255, (6, 5, 3)).astype(np.uint8)
        os.makedirs((tmp_path / name).parent, exist_ok=True)
        cv2.imwrite(str(tmp_path / name), img[..., ::-1])  # RGB on disk
        imgs[name] = img
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    (tmp_path / '.hidden.png').write_bytes(b'x')
    (tmp_path / 'notes.txt').write_text('x')
    return tmp_path, imgs


def test_folder_glob_and_corrupt_files(folder):
    root, imgs = folder
    errors = []
    src = ImageSource(root, on_error=lambda n, e: errors.append((n, str(e))))
    assert src.names == ['a.png', 'b.jpg', 'bad.png']
    got = dict(src)
    assert np.array_equal(got['a.png'], imgs['a.png'])  # read as RGB
    assert set(got) == {'a.png', 'b.jpg'}
    assert [n for n, _ in errors] == ['bad.png'] and 'truncated' in errors[0][1]
    assert src.errors == [('bad.png', 'OSError: ' + errors[0][1])]
    # without on_error the stream raises naming the file
    with pytest.raises(OSError, match='bad.png is truncated'):
        list(ImageSource(str(root)))
    assert ImageSource(root, recursive=True).names == [
        'a.png',
        'b.jpg',
        'bad.png',
        'sub/c.png',
    ]
    # a glob: names relative to its folder part, so sub-folders stay apart
    assert ImageSource(f'{root}/**/*.png').names == ['a.png', 'bad.png', 'sub/c.png']
    assert ImageSource(f'{root}/s*/*.png').names == ['sub/c.png']


def test_memory_inputs_and_lists(folder):
    root, imgs = folder
    arr = imgs['a.png']
    src = ImageSource([root / 'a.png', arr, Image.fromarray(arr), np.stack([arr, arr])])
    assert src.names == ['a.png', 'image_1', 'image_2', 'image_3', 'image_4']
    assert all(np.array_equal(x, arr) for _, x in src)
    src = ImageSource([arr, arr.astype(np.float32) - 128], on_error=lambda n, e: 0)
    assert len(list(src)) == 1
    assert (
        src.errors[0][0] == 'image_1' and 'source[1]: float image' in src.errors[0][1]
    )


def test_nothing_to_read(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'source: .*nope is not a file'):
        ImageSource(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match=r'no images in folder .*empty'):
        ImageSource(tmp_path / 'empty', arg='--source')
    with pytest.raises(ValueError, match=r"the glob '.*\*.png' matches no images"):
        ImageSource(str(tmp_path / '*.png'))
    with pytest.raises(ValueError, match='list of images is empty'):
        ImageSource([])
    with pytest.raises(TypeError, match='got dict'):
        ImageSource({'a': 1})
