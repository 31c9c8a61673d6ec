"""Photo to model input: decode (EXIF-upright RGB), find the face (MTCNN or the label's own points), align it to a
template, crop.

photo.py decodes and names what is wrong with a file, detect.py wraps MTCNN, landmarks.py reads and checks a
label's points, align.py warps to the template, settings.py holds FaceSettings, preprocess.py is the one
preprocessing (prepare; prepare_faces for predict's every face), workers.py runs it over many photos for the cache
(prepare_many).
"""
from pipeline.faces.landmarks import FaceLabel
from pipeline.faces.photo import REASONS, PhotoError, load_photo, open_photo
from pipeline.faces.preprocess import PreparedFace, prepare, prepare_batch, prepare_faces
from pipeline.faces.settings import FaceSettings
from pipeline.faces.workers import prepare_many

__all__ = ["REASONS", "FaceLabel", "FaceSettings", "PhotoError", "PreparedFace", "load_photo", "open_photo", "prepare",
           "prepare_batch", "prepare_faces", "prepare_many"]
