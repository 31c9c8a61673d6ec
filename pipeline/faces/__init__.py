"""Photo to model input: decode (EXIF-upright RGB), find the face (MTCNN or the label's own points), align it to a
template, crop.

photo.py decodes and names what is wrong with a file, detect.py wraps MTCNN, landmarks.py reads and checks a
label's points, align.py warps to the template, preprocess.py is the one preprocessing (prepare / prepare_many for
the cache, prepare_faces for predict's every face), with FaceSettings.
"""
from pipeline.faces.landmarks import FaceLabel
from pipeline.faces.photo import REASONS, PhotoError, load_photo, open_photo
from pipeline.faces.preprocess import (FaceSettings, PreparedFace, prepare, prepare_batch, prepare_faces,
                                       prepare_many)

__all__ = ["REASONS", "FaceLabel", "FaceSettings", "PhotoError", "PreparedFace", "load_photo", "open_photo", "prepare",
           "prepare_batch", "prepare_faces", "prepare_many"]
