"""A searchable media library on top of the store: the engine behind the ``polymodal`` command."""

from polymodal.library.profile import Profile, choose_profile, clip_profile, offline_profile
from polymodal.library.schema import MediaItem, MediaSegment

__all__ = ["MediaItem", "MediaSegment", "Profile", "choose_profile", "clip_profile", "offline_profile"]
