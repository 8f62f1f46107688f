"""Urgency and time signals: the hand-written cues TRIAGE.md names for priority.

They are phrases matched with :class:`~hotline_classifier.phrases.PhraseMatcher` (diacritics
optional, never across punctuation). The priority model uses them as features next to the
words of the message, and the engine quotes them in ``reasons`` ("urgency: 'đang đâm'",
"time: 'tối qua' → past").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hotline_classifier.phrases import Phrase, PhraseMatcher

# Each signal: what it stands for in a reason, and the phrases that raise it.
SIGNAL_PHRASES: Final[dict[str, tuple[str, ...]]] = {
    # ---- danger to life or body (P1 cues)
    "weapon": (
        "dao", "con dao", "dao găm", "dao phay", "mã tấu", "kiếm", "rựa", "búa", "gậy sắt",
        "tuýp sắt", "ống tuýp", "mác", "súng", "súng hoa cải", "súng tự chế", "lựu đạn",
        "knife", "knives", "machete", "gun", "guns", "pistol", "axe", "cầm dao", "rút dao",
        "vác dao", "cầm mã tấu", "cầm rựa", "cầm súng", "kéo", "gạch đá", "dao bấm",
    ),
    "attack": (
        "đâm", "chém", "bắn", "nổ súng", "tiếng súng", "đang đánh", "đánh hội đồng",
        "rượt chém", "đuổi chém", "đâm chém", "hỗn chiến", "stab", "stabbed", "stabbing",
        "shot", "shooting", "attacking", "beating", "đánh đập", "đập đầu", "siết cổ", "bóp cổ",
    ),
    "blood": (
        "máu", "chảy máu", "mất máu", "đầy máu", "bê bết máu", "máu chảy", "bleeding", "blood",
    ),
    "unconscious": (
        "bất tỉnh", "ngất", "ngất xỉu", "hôn mê", "co giật", "không tỉnh", "nằm bất động",
        "không thở", "tím tái", "sùi bọt mép", "unconscious", "not breathing", "passed out",
        "not moving", "không cử động",
    ),
    "trapped": (
        "mắc kẹt", "kẹt trong", "bị kẹt", "bị nhốt", "không ra được", "không tự ra được",
        "không thoát ra được", "trapped", "stuck", "kẹt lại", "chưa ra được",
    ),
    "drowning": (
        "đuối nước", "chết đuối", "chìm", "bị chìm", "nước cuốn", "lũ cuốn", "bị cuốn",
        "cuốn trôi", "rơi xuống sông", "rơi xuống hồ", "rơi xuống biển", "té xuống sông",
        "nhảy cầu", "drowning", "drown", "swept away", "fell into the river", "lật thuyền",
        "lật ghe", "lật đò", "chới với", "mất tích trên biển", "trôi dạt",
    ),
    "fire": (
        "cháy", "bốc cháy", "đang cháy", "cháy lớn", "lửa", "ngọn lửa", "khói", "khói đen",
        "nổ", "phát nổ", "bùng cháy", "cháy rừng", "fire", "burning", "smoke", "explosion",
        "exploded", "on fire", "chập điện", "rò rỉ gas", "xì gas", "mùi gas", "gas leak",
    ),
    "kidnap": (
        "bắt cóc", "bắt đi", "ép lên xe", "bắt lên xe", "kidnap", "kidnapped", "abducted",
        "bắt giữ trái phép", "giam giữ", "khống chế",
    ),
    "help": (
        "cứu", "cứu với", "cứu em", "cứu tôi", "cứu con", "kêu cứu", "cấp cứu", "help",
        "help me", "sos", "khẩn cấp", "gấp", "gấp lắm", "urgent", "emergency", "nhanh lên",
        "tới ngay", "đến ngay", "come quickly", "please hurry",
    ),
    "severe_injury": (
        "bị thương nặng", "thương nặng", "nguy kịch", "nguy hiểm đến tính mạng", "gãy chân",
        "gãy tay", "vỡ đầu", "dập đầu", "nằm trên đường", "nằm bất động", "seriously injured",
        "badly hurt", "badly injured", "bị thương ở đầu", "chấn thương", "nặng lắm", "tử vong",
        "chết", "died", "dead",
    ),
    "injury": ("bị thương", "injured", "hurt", "thương tích", "bị đánh"),
    "threat": (
        "dọa giết", "dọa chém", "dọa đâm", "đe dọa", "dọa", "threaten", "threatened",
        "threatening", "sẽ giết", "giết", "kill", "hurt her", "hurt him",
    ),
    "stranded": (
        "nước lên", "nước dâng", "ngập", "lũ", "lũ lên", "nóc nhà", "mái nhà", "cô lập",
        "flood", "flooded", "stranded", "sạt lở", "lở đất", "sập", "đổ sập", "bị vùi",
        "landslide", "collapsed", "tường nứt",
    ),
    # ---- time
    "now": (
        "đang", "hiện", "hiện đang", "hiện tại", "bây giờ", "lúc này", "ngay lúc này",
        "right now", "now", "currently", "still", "vẫn đang", "vẫn còn", "đang diễn ra",
        "đang xảy ra", "is happening", "happening", "at the moment", "ngay bây giờ", "chừ",
        "bây chừ", "đang còn",
    ),
    "just": (
        "vừa", "vừa mới", "vừa xong", "mới đây", "mới xảy ra", "phút trước", "cách đây",
        "vài phút", "mấy phút", "lúc nãy", "ban nãy", "hồi nãy", "just", "just now",
        "minutes ago", "a few minutes", "mới", "tức thì",
    ),
    "tonight": ("tối nay", "đêm nay", "tối ni", "đêm ni", "tonight", "chiều nay", "trưa nay"),
    "today_earlier": ("sáng nay", "sáng ni", "hồi sáng", "this morning", "earlier today"),
    "soon": (
        "sắp", "chuẩn bị", "chuẩn bị chuyển", "sắp chuyển", "định chuyển", "about to",
        "going to", "hẹn", "bắt chuyển", "yêu cầu chuyển", "đang chờ chuyển",
    ),
    "past": (
        "hôm qua", "tối qua", "đêm qua", "chiều qua", "sáng qua", "trưa qua", "hôm trước",
        "hôm kia", "bữa trước", "bữa qua", "tuần trước", "tuần rồi", "tháng trước",
        "tháng rồi", "năm ngoái", "năm trước", "mấy hôm trước", "dạo trước", "trước đây",
        "cách đây mấy ngày", "cách đây một tuần", "đã lâu", "yesterday", "last night",
        "last week", "last month", "days ago", "weeks ago", "months ago", "hồi tết",
        "đầu năm", "năm rồi", "mấy ngày trước", "hôm bữa", "hôm rồi",
    ),
    "recurring": (
        "thường xuyên", "hay", "mấy hôm nay", "mấy hôm ni", "mấy bữa nay", "mấy bữa ni",
        "đêm nào cũng", "tối nào cũng", "ngày nào cũng", "sáng nào cũng", "đêm mô cũng",
        "tối mô cũng", "ngày mô cũng", "liên tục", "suốt", "nhiều lần", "mấy tháng nay",
        "mấy tháng ni", "lâu nay", "từ lâu", "every night", "every day", "often", "always",
        "regularly", "all the time", "kéo dài", "tình trạng",
    ),
    # ---- lower urgency
    "light_injury": (
        "trầy nhẹ", "trầy xước", "xây xát", "bị thương nhẹ", "thương nhẹ", "không sao",
        "may không ai", "không ai bị thương", "không có ai bị thương", "minor", "slightly",
        "scratches", "nobody was hurt", "no one was hurt", "no one hurt", "không nguy hiểm",
        "đã được đưa đi viện", "đã đưa đi viện", "sơ cứu rồi",
    ),
    "safe": (
        "đã an toàn", "an toàn rồi", "đã tìm thấy", "tìm thấy rồi", "đã về nhà", "đã về rồi",
        "đang ở nhà tôi", "đang ở nhà em", "đang được chăm sóc", "is safe", "are safe",
        "found him", "found her", "đã ổn", "ổn rồi", "dập tắt", "đã dập tắt", "đã tắt",
        "put out", "đã xử lý xong",
    ),
    "missing": (
        "mất tích", "chưa về", "không về", "bỏ nhà đi", "đi lạc", "lạc", "mất liên lạc",
        "không liên lạc được", "missing", "not come back", "hasn't come back", "can't find",
        "không thấy đâu", "tìm không thấy", "đi đâu không biết",
    ),
    "question": (
        "cho hỏi", "xin hỏi", "hỏi", "thủ tục", "hướng dẫn", "có được không", "có phải",
        "làm sao", "như thế nào", "bao lâu", "ở đâu", "how", "can i", "can we", "where can",
        "do i need",
    ),
    "risk": (
        "nguy cơ", "lo ngại", "sợ có ngày", "có thể gây", "tiềm ẩn", "risk", "dangerous",
        "nguy hiểm", "đề nghị kiểm tra", "đề nghị xử lý", "mong cơ quan chức năng",
        "xin kiểm tra",
    ),
}

SIGNALS: Final[tuple[str, ...]] = tuple(SIGNAL_PHRASES)
URGENT_SIGNALS: Final = frozenset(
    {"weapon", "attack", "blood", "unconscious", "trapped", "drowning", "fire", "kidnap",
     "help", "severe_injury", "threat", "stranded"}
)
NOW_SIGNALS: Final = frozenset({"now", "just", "tonight", "soon", "missing"})
PAST_SIGNALS: Final = frozenset({"past", "recurring", "today_earlier"})
CALM_SIGNALS: Final = frozenset({"light_injury", "safe", "question", "risk"})


@dataclass(frozen=True, slots=True)
class Signals:
    """Signals found in one message, each with the first phrase that raised it."""

    found: dict[str, str]

    def has(self, name: str) -> bool:
        return name in self.found

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.found)


class SignalDetector:
    """Finds the signals of :data:`SIGNAL_PHRASES` in tokenised phrases."""

    def __init__(self, phrases: dict[str, tuple[str, ...]] | None = None) -> None:
        table = SIGNAL_PHRASES if phrases is None else phrases
        self._matcher: PhraseMatcher[str] = PhraseMatcher(
            (phrase, name) for name, items in table.items() for phrase in items
        )

    def detect(self, phrases: Sequence[Phrase]) -> Signals:
        """First (longest at its position) phrase of each signal found in the text."""
        found: dict[str, str] = {}
        for match in self._matcher.find(phrases):
            name = match.pattern.payload
            if name not in found:
                found[name] = match.pattern.name
        return Signals(found)
