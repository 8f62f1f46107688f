"""Stable label vocabularies shared by every service (see ../shared/TRIAGE.md).

Labels are identifiers: never rename one; add new ones only with a migration note.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Where an inbound item came from (and where a citizen is answered)."""

    SMS = "sms"
    ZALO = "zalo"
    VIBER = "viber"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    VOICE = "voice"  # Twilio Voice or a PBX (Asterisk/FreeSWITCH) adapter
    WEB = "web"  # the public web form
    DESK = "desk"  # a call-taker logging a phone call summary


class InboundKind(StrEnum):
    MESSAGE = "message"
    CALL_ANSWERED = "call_answered"
    CALL_MISSED = "call_missed"
    VOICEMAIL = "voicemail"
    CALL_SUMMARY = "call_summary"


class Category(StrEnum):
    GREETING = "greeting"
    TRAFFIC = "traffic"
    PUBLIC_ORDER = "public_order"
    VIOLENCE = "violence"
    THEFT = "theft"
    DRUGS = "drugs"
    GAMBLING = "gambling"
    FRAUD = "fraud"
    FIRE_RESCUE = "fire_rescue"
    ENVIRONMENT = "environment"
    OFFICER_CONDUCT = "officer_conduct"
    ADMIN_REQUEST = "admin_request"
    OTHER = "other"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class District(StrEnum):
    """District-level units of Thừa Thiên Huế province (2024 organisation)."""

    HUE_CITY = "hue_city"
    PHONG_DIEN = "phong_dien"
    QUANG_DIEN = "quang_dien"
    HUONG_TRA = "huong_tra"
    HUONG_THUY = "huong_thuy"
    PHU_VANG = "phu_vang"
    PHU_LOC = "phu_loc"
    NAM_DONG = "nam_dong"
    A_LUOI = "a_luoi"


class Language(StrEnum):
    VI = "vi"
    EN = "en"
    OTHER = "other"
