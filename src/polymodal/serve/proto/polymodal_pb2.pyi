from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FloatVector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("text", "vector", "image", "audio", "image_url", "audio_url", "field", "limit", "where", "modality")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    AUDIO_URL_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    text: str
    vector: FloatVector
    image: bytes
    audio: bytes
    image_url: str
    audio_url: str
    field: str
    limit: int
    where: str
    modality: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, text: _Optional[str] = ..., vector: _Optional[_Union[FloatVector, _Mapping]] = ..., image: _Optional[bytes] = ..., audio: _Optional[bytes] = ..., image_url: _Optional[str] = ..., audio_url: _Optional[str] = ..., field: _Optional[str] = ..., limit: _Optional[int] = ..., where: _Optional[str] = ..., modality: _Optional[_Iterable[str]] = ...) -> None: ...

class SimilarRequest(_message.Message):
    __slots__ = ("ids", "negative", "limit", "where", "modality")
    IDS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    negative: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    where: str
    modality: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., negative: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., where: _Optional[str] = ..., modality: _Optional[_Iterable[str]] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("id", "score", "uri", "modality", "start", "end", "snippet", "media", "json")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    uri: str
    modality: str
    start: float
    end: float
    snippet: str
    media: str
    json: str
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., uri: _Optional[str] = ..., modality: _Optional[str] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., snippet: _Optional[str] = ..., media: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class SearchReply(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ...) -> None: ...

class AddDocsRequest(_message.Message):
    __slots__ = ("docs",)
    DOCS_FIELD_NUMBER: _ClassVar[int]
    docs: bytes
    def __init__(self, docs: _Optional[bytes] = ...) -> None: ...

class AddDocsReply(_message.Message):
    __slots__ = ("added",)
    ADDED_FIELD_NUMBER: _ClassVar[int]
    added: int
    def __init__(self, added: _Optional[int] = ...) -> None: ...

class GetDocRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetDocReply(_message.Message):
    __slots__ = ("doc",)
    DOC_FIELD_NUMBER: _ClassVar[int]
    doc: bytes
    def __init__(self, doc: _Optional[bytes] = ...) -> None: ...

class DeleteDocRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteDocReply(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class ReadyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadyReply(_message.Message):
    __slots__ = ("ready", "documents", "schema", "profile", "json")
    READY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    documents: int
    schema: str
    profile: str
    json: str
    def __init__(self, ready: _Optional[bool] = ..., documents: _Optional[int] = ..., schema: _Optional[str] = ..., profile: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...
