"""Generate the labelled triage corpus (deterministic: same inputs → byte-identical output).

Sources:

* ``handwritten/*.txt`` — messages written by hand for this corpus, one per line:
  ``PRIORITY [@district|@-] [en|other] [channel] | text``; slots ``{P}`` (a place phrase, or a
  place-less one such as "trong xóm"), ``{A}`` (a named commune/ward/town) and ``{S}`` (a named
  landmark) are filled from the gazetteer's districts, which sets ``location``.
* template families below — phrasings composed from slot lists (objects, times, urgency),
  with the priority derived from the time/urgency slot exactly as TRIAGE.md defines.

Every message is emitted in several surface forms (without diacritics, texting
abbreviations, Huế dialect, typos, greeting prefix or thanks suffix, lower case), the way
hotline messages really arrive. Labels follow ../../../../shared/TRIAGE.md; location labels are
cross-checked against the gazetteer and disagreements are reported.

Output: ``corpus/train.jsonl`` and ``corpus/heldout.jsonl``, split 85/15 by a hash of the
message *family* (all surface forms of one written message, or one template), so the held-out
split measures generalisation to unseen phrasings, not to re-spellings.

Run: ``.venv/bin/python services/classifier/data/generate_corpus.py``
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hotline_classifier.gazetteer import Gazetteer
from hotline_classifier.labels import CATEGORIES, DISTRICTS
from hotline_classifier.normalize import normalize, strip_diacritics
from hotline_classifier.phrases import split_phrases

SEED = 20240124
HERE = Path(__file__).resolve().parent
HANDWRITTEN = HERE / "handwritten"
OUT = HERE / "corpus"
HELDOUT_PERCENT = 15

CHANNELS = ("sms", "zalo", "viber", "whatsapp", "telegram", "voice", "web", "desk")

# ----------------------------------------------------------------------------- places

AREAS: dict[str, list[str]] = {
    "hue_city": [
        "Vỹ Dạ",
        "Kim Long",
        "An Cựu",
        "Phú Hội",
        "Tây Lộc",
        "Phú Hậu",
        "Gia Hội",
        "Thuận Hòa",
        "Thuận Lộc",
        "Vĩnh Ninh",
        "Xuân Phú",
        "An Đông",
        "An Tây",
        "Hương Sơ",
        "Thủy Biều",
        "Thủy Xuân",
        "Thủy Vân",
        "Hương Long",
        "Phú Thượng",
        "Thuận An",
        "Phú Mậu",
        "Hương Vinh",
    ],
    "phong_dien": [
        "Phong Hiền",
        "Điền Hải",
        "Phong Điền",
        "Phong An",
        "Phong Sơn",
        "Điền Lộc",
        "Phong Chương",
        "Phong Bình",
        "Điền Hòa",
        "Phong Xuân",
        "Phong Mỹ",
    ],
    "quang_dien": [
        "Sịa",
        "Quảng Thái",
        "Quảng Lợi",
        "Quảng An",
        "Quảng Phước",
        "Quảng Thành",
        "Quảng Vinh",
        "Quảng Công",
        "Quảng Ngạn",
        "Quảng Thọ",
        "Quảng Phú",
    ],
    "huong_tra": [
        "Tứ Hạ",
        "Hương Văn",
        "Hương Xuân",
        "Hương Chữ",
        "Hương Toàn",
        "Bình Tiến",
        "Bình Điền",
        "Hương Vân",
        "Hương Bình",
    ],
    "huong_thuy": [
        "Phú Bài",
        "Thủy Dương",
        "Thủy Phương",
        "Thủy Châu",
        "Thủy Lương",
        "Thủy Tân",
        "Thủy Phù",
        "Thủy Thanh",
        "Dương Hòa",
        "Phú Sơn",
    ],
    "phu_vang": [
        "Phú Đa",
        "Vinh Thanh",
        "Vinh Xuân",
        "Phú Diên",
        "Vinh An",
        "Vinh Hà",
        "Phú Hồ",
        "Phú Lương",
        "Phú Thuận",
        "Phú Hải",
    ],
    "phu_loc": [
        "Lăng Cô",
        "Chân Mây",
        "Vinh Hiền",
        "Lộc Điền",
        "Lộc An",
        "Lộc Bổn",
        "Lộc Trì",
        "Lộc Tiến",
        "Lộc Vĩnh",
        "Lộc Sơn",
        "Vinh Hưng",
        "Giang Hải",
        "Phú Lộc",
        "Cầu Hai",
    ],
    "nam_dong": [
        "Khe Tre",
        "Hương Phú",
        "Hương Sơn",
        "Hương Hữu",
        "Hương Lộc",
        "Thượng Lộ",
        "Thượng Long",
        "Thượng Nhật",
        "Thượng Quảng",
        "Nam Đông",
    ],
    "a_luoi": [
        "A Lưới",
        "Hồng Vân",
        "A Roàng",
        "A Ngo",
        "Hồng Bắc",
        "Hồng Kim",
        "Hồng Thượng",
        "Hồng Thái",
        "Lâm Đớt",
        "Quảng Nhâm",
    ],
}
SPOTS: dict[str, list[str]] = {
    "hue_city": [
        "chợ Đông Ba",
        "cầu Trường Tiền",
        "Đại Nội",
        "chùa Thiên Mụ",
        "ga Huế",
        "chợ An Cựu",
        "chợ Bến Ngự",
        "biển Thuận An",
        "phố đi bộ Nguyễn Đình Chiểu",
        "đường Lê Lợi",
        "đường Hùng Vương",
        "đường Trần Hưng Đạo",
        "đường Điện Biên Phủ",
        "đường Bà Triệu",
        "đường Võ Nguyên Giáp",
        "cầu Phú Xuân",
        "lăng Khải Định",
        "đồi Vọng Cảnh",
        "Bệnh viện Trung ương Huế",
        "Aeon Mall Huế",
        "chợ Tây Lộc",
        "bến xe phía Nam",
        "cồn Hến",
        "Kinh thành",
        "cầu Dã Viên",
        "đường Nguyễn Sinh Cung",
        "đường Tố Hữu",
    ],
    "phong_dien": [
        "thị trấn Phong Điền",
        "chợ Phò Trạch",
        "làng cổ Phước Tích",
        "khu công nghiệp Phong Điền",
    ],
    "quang_dien": ["chợ Sịa", "thị trấn Sịa", "làng Thủy Lập"],
    "huong_tra": ["chợ Tứ Hạ", "khu công nghiệp Tứ Hạ", "hồ Bình Điền", "cầu Tứ Phú"],
    "huong_thuy": [
        "sân bay Phú Bài",
        "khu công nghiệp Phú Bài",
        "chợ Phú Bài",
        "cầu ngói Thanh Toàn",
        "hồ Tả Trạch",
    ],
    "phu_vang": ["thị trấn Phú Đa", "chợ Phú Đa", "biển Phú Thuận", "biển Vinh Thanh"],
    "phu_loc": [
        "biển Lăng Cô",
        "cảng Chân Mây",
        "đầm Lập An",
        "vườn quốc gia Bạch Mã",
        "ngã ba Cầu Hai",
        "hồ Truồi",
        "hầm Phước Tượng",
        "biển Cảnh Dương",
    ],
    "nam_dong": ["thị trấn Khe Tre", "thác Kazan"],
    "a_luoi": ["thị trấn A Lưới", "đèo A Co"],
}
SPOTS_EN: dict[str, list[str]] = {
    "hue_city": [
        "Dong Ba market",
        "Truong Tien bridge",
        "the Imperial City",
        "Thien Mu pagoda",
        "Hue railway station",
        "Thuan An beach",
        "Khai Dinh tomb",
        "the Citadel",
        "Le Loi street",
        "Hue city center",
        "Tu Duc tomb",
    ],
    "phu_loc": ["Lang Co beach", "Bach Ma national park", "Lang Co", "Chan May port"],
    "huong_thuy": ["Phu Bai airport", "Thanh Toan bridge"],
    "a_luoi": ["A Luoi town"],
    "phu_vang": ["Vinh Thanh beach"],
}
DISTRICT_WEIGHTS = {
    "hue_city": 28,
    "phong_dien": 9,
    "quang_dien": 8,
    "huong_tra": 9,
    "huong_thuy": 10,
    "phu_vang": 9,
    "phu_loc": 12,
    "nam_dong": 7,
    "a_luoi": 8,
}
PREPS = ["ở", "tại", "gần", "khu vực", "ở gần", "ngay", "ở khu", "bên", "chỗ"]
PREPS_EN = ["in", "near", "at", "close to", "around"]
GENERIC_PLACES = [
    "ở đầu kiệt nhà em",
    "trong xóm em",
    "ngoài đường lớn",
    "gần nhà em",
    "trước cổng chợ",
    "ở ngã tư gần trường",
    "trên quốc lộ 1A",
    "ở khu trọ công nhân",
    "trong hẻm nhỏ",
    "ở chợ",
    "ngoài bến xe",
    "ở thôn em",
    "gần cầu",
    "ở khu dân cư mới",
    "trên đường liên xã",
    "ở bãi biển",
    "gần ủy ban xã",
    "ở khu tái định cư",
    "đầu ngõ",
    "ở phường em",
    "ở quê em",
    "cạnh trường tiểu học",
    "ở khu đô thị mới",
    "ở làng bên",
    "dưới chân đèo",
    "gần nhà thờ",
    "ở xóm trên",
    "cuối kiệt",
    "gần chùa",
    "ở khu công nghiệp",
    "trên đường đê",
    "ở bến đò",
    "ngoài đồng",
    "gần trạm xăng",
    "ở khu phố",
    "ven sông",
    "gần trường cấp 3",
    "ở tổ 5",
    "trong khu tập thể",
    "gần bệnh viện huyện",
    "ở thôn 3",
    "gần cây đa đầu làng",
    "tại nhà văn hóa thôn",
    "ở chân cầu",
    "ngoài quốc lộ 49",
    "ở xã bên",
]
GENERIC_PLACES_EN = [
    "near our hotel",
    "on the main road",
    "in the old quarter",
    "near the river",
    "at the night market",
    "outside our homestay",
    "on the highway",
    "in the alley behind the hotel",
    "near the bus station",
    "on the beach",
    "by the lake",
    "in the backpacker area",
]


@dataclass(frozen=True)
class Fill:
    text: str
    district: str | None


class PlaceFiller:
    """Fills {P}/{A}/{S} slots; all named places of one message come from one district."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def district(self) -> str:
        names = list(DISTRICT_WEIGHTS)
        return self.rng.choices(names, weights=[DISTRICT_WEIGHTS[n] for n in names])[0]

    def fill(self, text: str, english: bool) -> Fill:
        if not re.search(r"\{[PAS]\}", text):
            return Fill(text, None)
        rng = self.rng
        district = self.district()
        if english and rng.random() < 0.6:
            district = rng.choice(list(SPOTS_EN))
        named = False

        def area() -> str:
            name = rng.choice(AREAS[district])
            return strip_diacritics(name) if english else name

        def spot() -> str:
            if english:
                pool = SPOTS_EN.get(district)
                return rng.choice(pool) if pool else strip_diacritics(rng.choice(AREAS[district]))
            return rng.choice(SPOTS[district])

        def replace(match: re.Match[str]) -> str:
            nonlocal named
            slot = match.group(0)
            if slot == "{A}":
                named = True
                return area()
            if slot == "{S}":
                named = True
                return spot()
            if rng.random() < 0.38:
                return rng.choice(GENERIC_PLACES_EN if english else GENERIC_PLACES)
            named = True
            name = spot() if rng.random() < 0.45 else area()
            prep = rng.choice(PREPS_EN if english else PREPS)
            return f"{prep} {name}"

        out = re.sub(r"\{[PAS]\}", replace, text)
        return Fill(out, district if named else None)


# ----------------------------------------------------------------------------- surface forms

ABBREVIATIONS: list[tuple[str, list[str]]] = [
    ("số điện thoại", ["sdt", "sđt"]),
    ("điện thoại", ["đt", "dt"]),
    ("không", ["ko", "k", "hok", "kh", "khong"]),
    ("được", ["dc", "đc", "duoc"]),
    ("người", ["ng"]),
    ("anh em", ["ae"]),
    ("anh", ["a"]),
    ("em", ["e"]),
    ("gì", ["j"]),
    ("với", ["vs"]),
    ("rồi", ["r"]),
    ("biết", ["bít", "bik"]),
    ("quá", ["wa", "qá"]),
    ("vậy", ["v", "z"]),
    ("chồng", ["ck"]),
    ("vợ", ["vk"]),
    ("bao nhiêu", ["bn"]),
    ("cũng", ["cx", "cg"]),
    ("như thế nào", ["ntn"]),
    ("mọi người", ["mn", "mng"]),
    ("bây giờ", ["bh", "bgio"]),
    ("trước", ["trc"]),
    ("thôi", ["thui"]),
    ("nhiều", ["nhìu"]),
    ("cảm ơn", ["tks", "camon", "thanks"]),
    ("hôm nay", ["hnay"]),
    ("hôm qua", ["hqua"]),
    ("mình", ["mk", "mik"]),
    ("công an", ["CA"]),
    ("triệu", ["tr"]),
]
DIALECT: list[tuple[str, str]] = [
    ("gì", "chi"),
    ("này", "ni"),
    ("đâu", "mô"),
    ("sao", "răng"),
    ("vậy", "rứa"),
    ("bây giờ", "bây chừ"),
    ("tôi", "tui"),
    ("kia", "tê"),
    ("thế nào", "răng"),
    ("ở đâu", "ở mô"),
    ("không", "không"),
    ("nhanh", "lẹ"),
]
GREETING_PREFIXES = [
    "Chào anh, ",
    "Chào anh. ",
    "A ơi, ",
    "Anh ơi ",
    "Dạ em chào anh ạ. ",
    "Alo anh, ",
    "Thưa đồng chí, ",
    "Chào anh Giám đốc, ",
    "Em chào anh, em xin báo: ",
    "Chú ơi, ",
    "Chúc anh buổi tối vui vẻ. Em báo việc này: ",
    "Xin chào, ",
    "Dạ anh ơi, ",
    "Chào buổi sáng anh. ",
    "Em chào anh, chúc anh sức khỏe. Nhà em ",
    "Anh ơi giúp em, ",
    "Hello anh, ",
    "Chào các anh trực ban, ",
    "Dạ chào anh, em ở gần đây, ",
]
SUFFIXES = [
    " Mong anh cho người xuống xử lý.",
    " Cảm ơn anh.",
    " anh xử lý giúp em với",
    " Em cảm ơn ạ 🙏",
    " Mong các anh sớm có biện pháp.",
    " Nhờ anh giúp đỡ.",
    " Em gửi hình sau ạ.",
    " Anh cho người tới giúp với!",
    " Xin cảm ơn.",
    " cam on anh nhieu",
    " Em có quay video ạ.",
    " Mong công an vào cuộc.",
    " Em xin giấu tên ạ.",
    " Đề nghị các anh kiểm tra.",
    " 😢",
    " Gấp lắm anh ơi!",
]
# Greeting-then-report: a greeting sentence, a connector, then the report (label: the report).
OPENERS = [
    "Chào anh, chúc anh buổi sáng tốt lành.",
    "Em chào anh ạ, chúc anh sức khỏe.",
    "Chúc các anh trực đêm vui vẻ.",
    "Dạ em chào chú, chú khỏe không chú.",
    "Xin chào đồng chí Giám đốc.",
    "Chào anh, em là người dân ở đây, mới lưu số anh.",
    "Chúc mừng năm mới anh!",
    "Cảm ơn anh hôm trước đã trả lời tin nhắn của em.",
    "Chào buổi tối anh 🙏",
    "Alo anh, em xin lỗi làm phiền giờ này.",
    "Em chào anh, em đọc báo thấy số của anh.",
    "Chúc anh cuối tuần vui vẻ.",
    "Dạ thưa anh.",
    "Hello anh 👋",
    "Kính chào anh Giám đốc.",
]
CALM_OPENERS = [
    "Hôm nay xóm em bình yên, chỉ có một chuyện:",
    "Dạ mọi việc vẫn ổn anh ạ, chỉ có việc này:",
    "Chúc anh sức khỏe, không có gì gấp, em chỉ phản ánh:",
    "Hôm ni chưa có chi nhiều,",
]
CONNECTORS = [
    " ",
    " Nhân tiện em báo luôn: ",
    " Em có việc muốn báo: ",
    " À anh ơi, ",
    " Em xin phản ánh: ",
    " Có chuyện này: ",
    "\n",
]
URGENT_SUFFIXES = [" Cứu với!", " Nhanh lên anh ơi!", " Gấp lắm!!!", " Mau lên!"]
EN_SUFFIXES = [" Thank you.", " Please help.", " Thanks in advance!", " Can someone come?"]


def _replace_word(text: str, word: str, repl: str) -> str:
    """Replace a whole word, but never inside a capitalised name ("Bà Triệu", "Anh Hùng")."""
    pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
    return pattern.sub(lambda m: repl if m.group(0)[0].islower() else m.group(0), text)


class Styler:
    """Turns one written message into the surface forms it arrives in."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def abbreviate(self, text: str) -> str:
        for word, options in ABBREVIATIONS:
            if self.rng.random() < 0.65:
                text = _replace_word(text, word, self.rng.choice(options))
        return text

    def dialect(self, text: str) -> str:
        for word, repl in DIALECT:
            if self.rng.random() < 0.7:
                text = _replace_word(text, word, repl)
        return text

    def typo(self, text: str) -> str:
        words = text.split(" ")
        for _ in range(self.rng.randint(1, 2)):
            i = self.rng.randrange(len(words))
            w = words[i]
            following = words[i + 1] if i + 1 < len(words) else ""
            previous = words[i - 1] if i > 0 else ""
            if len(w) < 4 or w[0].isupper() or following[:1].isupper() or previous[:1].isupper():
                # Capitalised words are mostly place names: their spelling is the label.
                continue
            j = self.rng.randrange(1, len(w) - 1)
            kind = self.rng.random()
            if kind < 0.4:
                w = w[:j] + w[j + 1 :]
            elif kind < 0.7:
                w = w[:j] + w[j] + w[j:]
            else:
                w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
            words[i] = w
        return " ".join(words)

    def variant(
        self, text: str, category: str, priority: str, language: str, channel: str, index: int
    ) -> str:
        """Surface form number ``index`` (0 = as written, apart from slot filling)."""
        rng = self.rng
        if index == 0:
            return text
        formal = channel in ("voice", "web", "desk")
        if language == "en":
            if rng.random() < 0.3:
                text = self.typo(text)
            if rng.random() < 0.4:
                text = text.lower()
            if rng.random() < 0.2 and category != "greeting":
                text = text.rstrip(".!") + rng.choice(EN_SUFFIXES)
            if rng.random() < 0.2:
                text = re.sub(r"[.,!?]", "", text)
            return text
        if language == "other":
            return text
        if not formal:
            if category != "greeting" and rng.random() < 0.22:
                prefix = rng.choice(GREETING_PREFIXES)
                text = prefix + text[:1].lower() + text[1:]
            if category != "greeting" and rng.random() < 0.18:
                # Urgent-sounding endings appear on urgent reports mostly, but not only.
                if priority == "P1":
                    pool = URGENT_SUFFIXES + SUFFIXES
                elif priority == "P2":
                    pool = SUFFIXES + URGENT_SUFFIXES[1:3]
                else:
                    pool = [x for x in SUFFIXES if "Gấp" not in x]
                text = text.rstrip(".") + ("." if rng.random() < 0.5 else "") + rng.choice(pool)
            if rng.random() < 0.18:
                text = self.dialect(text)
            if rng.random() < 0.45:
                text = self.abbreviate(text)
            if rng.random() < 0.2:
                text = self.typo(text)
        if rng.random() < (0.5 if not formal else 0.15):
            text = strip_diacritics(text)
        if rng.random() < 0.4:
            text = text.lower()
        elif priority == "P1" and rng.random() < 0.1:
            text = text.upper()
        if rng.random() < 0.15:
            text = re.sub(r"[.!]+$", "", text)
        return text


# ----------------------------------------------------------------------------- records


@dataclass
class Record:
    id: str
    family: str
    channel: str
    text: str
    category: str
    priority: str
    location: str | None
    language: str

    def as_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "channel": self.channel,
                "text": self.text,
                "category": self.category,
                "actionable": self.category != "greeting",
                "priority": self.priority,
                "location": self.location,
                "language": self.language,
            },
            ensure_ascii=False,
        )


def pick_channel(rng: random.Random, text: str, language: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    lowered = text.lower()
    if lowered.startswith(("người gọi", "nguoi goi", "cuộc gọi", "tổng đài")):
        return rng.choice(["voice", "voice", "desk"])
    if lowered.startswith(("kính gửi", "tôi xin", "tôi làm đơn", "đề nghị")):
        return "web"
    if language != "vi":
        return rng.choice(["whatsapp", "whatsapp", "telegram", "web", "viber"])
    return rng.choices(["sms", "zalo", "viber", "telegram", "whatsapp"], [30, 45, 10, 8, 7])[0]


LINE_RE = re.compile(r"^(P[1-4])((?:\s+\S+)*)\s*\|\s*(.+)$")


def parse_handwritten(path: Path) -> list[tuple[str, str, str | None, bool, str, str | None, str]]:
    """(category, priority, location-or-None, location_given, language, channel, text)."""
    rows = []
    category = path.stem
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or (line.startswith("#") and not line.startswith("##")):
            continue
        if line.startswith("##"):
            category = line[2:].strip()
            if category not in CATEGORIES:
                sys.exit(f"{path}:{number}: unknown category {category!r}")
            continue
        m = LINE_RE.match(line)
        if not m:
            sys.exit(f"{path}:{number}: cannot parse {line!r}")
        priority, flags, text = m.group(1), m.group(2).split(), m.group(3).strip()
        location: str | None = None
        line_category = category
        given = False
        language = "vi"
        channel = None
        for flag in flags:
            if flag.startswith("@"):
                given = True
                location = None if flag == "@-" else flag[1:]
                if location is not None and location not in DISTRICTS:
                    sys.exit(f"{path}:{number}: unknown district {location!r}")
            elif flag in ("en", "other"):
                language = flag
            elif flag in CHANNELS:
                channel = flag
            elif flag.startswith("=") and flag[1:] in CATEGORIES:
                line_category = flag[1:]
            else:
                sys.exit(f"{path}:{number}: unknown flag {flag!r}")
        if (priority == "P4") != (line_category == "greeting"):
            sys.exit(f"{path}:{number}: P4 is for greetings only")
        rows.append((line_category, priority, location, given, language, channel, text))
    return rows


# Surface forms per written message: the corpus stays balanced between frequent and rare
# categories, and every message appears with and without diacritics.
VARIANTS = {
    "greeting": 2,
    "traffic": 3,
    "public_order": 3,
    "violence": 3,
    "theft": 3,
    "drugs": 4,
    "gambling": 4,
    "fraud": 3,
    "fire_rescue": 3,
    "environment": 4,
    "officer_conduct": 4,
    "admin_request": 3,
    "other": 3,
}


def from_handwritten(rng: random.Random) -> list[Record]:
    records: list[Record] = []
    filler = PlaceFiller(rng)
    styler = Styler(rng)
    for path in sorted(HANDWRITTEN.glob("*.txt")):
        for category, priority, location, given, language, channel, text in parse_handwritten(path):
            # Content-addressed family and per-family seed: editing or adding one line changes
            # only that line's messages and split, never the rest of the corpus.
            family = f"h-{path.stem}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
            rng.seed(f"{SEED}:{family}")
            seen: set[str] = set()
            count = VARIANTS[category] + (1 if language == "en" else 0)
            if language == "other":
                count = 1
            for k in range(count):
                fill = filler.fill(text, language != "vi")
                where = location if given else fill.district
                chan = pick_channel(rng, fill.text, language, channel)
                surface = styler.variant(fill.text, category, priority, language, chan, k)
                if surface in seen:
                    continue
                seen.add(surface)
                records.append(
                    Record(
                        f"{family}~{k}", family, chan, surface, category, priority, where, language
                    )
                )
            formal = channel in ("voice", "web", "desk") or text.lower().startswith(
                ("người gọi", "kính gửi", "tôi xin", "tôi làm đơn")
            )
            if category != "greeting" and language == "vi" and not formal and rng.random() < 0.3:
                # The same report after a greeting: the label stays the report's.
                fill = filler.fill(text, False)
                where = location if given else fill.district
                openers = OPENERS + (CALM_OPENERS if priority == "P3" else [])
                body = styler.variant(fill.text, category, priority, language, "zalo", 9)
                surface = rng.choice(openers) + rng.choice(CONNECTORS) + body[:1].lower() + body[1:]
                if surface not in seen:
                    chan = pick_channel(rng, surface, language, channel)
                    records.append(
                        Record(
                            f"{family}~g",
                            family,
                            chan,
                            surface,
                            category,
                            priority,
                            where,
                            language,
                        )
                    )
    return records


# ----------------------------------------------------------------------------- templates
# Each template family: (name, category, [(pattern, priority)], slot lists). Patterns use
# {P}/{A}/{S} for places and {slot} for any list in SLOTS; the priority follows from the
# chosen time/urgency slot as TRIAGE.md says (just happened → P2, last night or earlier → P3).

SLOTS: dict[str, list[str]] = {
    "who": [
        "em",
        "tôi",
        "mẹ em",
        "bà ngoại em",
        "chị gái em",
        "ba tôi",
        "con gái tôi",
        "vợ tôi",
        "khách du lịch",
        "cô bán hàng",
        "chị hàng xóm",
        "tui",
        "mình",
        "bạn em",
        "ông cụ hàng xóm",
        "một sinh viên",
    ],
    "obj": [
        "điện thoại",
        "túi xách",
        "ví tiền",
        "dây chuyền vàng",
        "xe máy",
        "laptop",
        "iPhone",
        "túi đựng tiền hàng",
        "bông tai vàng",
        "xe đạp điện",
        "balo",
        "ví có giấy tờ",
        "điện thoại mới mua",
        "giỏ xách",
    ],
    "just": [
        "vừa",
        "mới",
        "vừa mới",
        "cách đây 10 phút",
        "mới đây",
        "lúc nãy",
        "cách đây khoảng 15 phút",
        "vừa xong",
        "chừng 5 phút trước",
    ],
    "past": [
        "tối qua",
        "đêm qua",
        "hôm qua",
        "tuần trước",
        "hôm kia",
        "mấy hôm trước",
        "chiều qua",
        "tháng trước",
        "hôm thứ bảy",
        "sáng hôm qua",
        "bữa trước",
    ],
    "suspect": [
        "thằng đó đội mũ đỏ",
        "hai thanh niên đi xe Exciter",
        "nó chạy xe Wave không biển",
        "đối tượng mặc áo khoác đen",
        "một người đàn ông khoảng 30 tuổi",
        "mấy đứa đi xe không biển số",
        "nó đi xe SH trắng",
        "một phụ nữ đeo khẩu trang",
    ],
    "flee": [
        "chạy về phía chợ",
        "chạy ra quốc lộ",
        "chạy mất hút",
        "chạy vào hẻm",
        "chạy về hướng cầu",
        "chạy theo đường ven sông",
    ],
    "veh": [
        "xe tải",
        "ô tô con",
        "xe khách",
        "xe container",
        "xe bán tải",
        "xe máy",
        "xe ben",
        "taxi",
        "xe ba gác",
    ],
    "vict": [
        "người đi xe máy",
        "một cụ già đi bộ",
        "học sinh đi xe đạp",
        "hai vợ chồng",
        "một thanh niên",
        "chị bán rau",
        "người đi đường",
    ],
    "sev": [
        "bất tỉnh",
        "nằm bất động",
        "chảy nhiều máu ở đầu",
        "bị kẹt dưới gầm xe",
        "không tỉnh, thở yếu",
        "gãy chân, máu chảy nhiều",
        "bị thương rất nặng",
    ],
    "light": [
        "chỉ bị trầy nhẹ",
        "may không ai bị thương",
        "bị xây xát nhẹ",
        "không ai sao cả",
        "chỉ hư xe",
        "bị trầy tay, đã đứng dậy được",
    ],
    "weapon": ["dao", "mã tấu", "rựa", "dao phay", "kiếm", "gậy sắt", "súng"],
    "fight_now": ["đang đánh nhau", "đang hỗn chiến", "đang đuổi chém nhau", "đang rượt đánh nhau"],
    "drug": ["ma túy đá", "thuốc lắc", "heroin", "cần sa", "bóng cười", "ke"],
    "game": ["đánh bài ăn tiền", "xóc đĩa", "đá gà ăn tiền", "lắc tài xỉu", "đánh binh xập xám"],
    "scam_who": [
        "công an",
        "cán bộ viện kiểm sát",
        "nhân viên ngân hàng",
        "nhân viên điện lực",
        "cán bộ thuế",
        "nhân viên bưu điện",
        "cán bộ tòa án",
        "nhân viên nhà mạng",
    ],
    "money": [
        "5 triệu",
        "20 triệu",
        "50 triệu",
        "100 triệu",
        "300 triệu",
        "2 tỷ",
        "15 triệu",
        "70 triệu",
        "8 triệu",
    ],
    "fire_place": [
        "nhà dân",
        "xưởng gỗ",
        "kho hàng",
        "quán karaoke",
        "tiệm tạp hóa",
        "cây xăng",
        "nhà trọ",
        "xe ô tô",
        "cửa hàng điện máy",
        "bãi phế liệu",
    ],
    "noise": ["hát karaoke", "mở loa kẹo kéo", "mở nhạc sàn", "nhậu nhẹt la hét"],
    "greet": [
        "Chào anh",
        "Em chào anh",
        "Chúc anh sức khỏe",
        "Chào buổi sáng anh",
        "Chúc các anh trực đêm vui vẻ",
        "Cảm ơn các anh",
        "Em chào chú công an",
        "Xin chào đồng chí",
        "Chúc anh ngày mới tốt lành",
        "Chào anh Giám đốc",
    ],
    "calm": [
        "hôm nay chưa có gì",
        "xóm em bình yên",
        "mọi việc ổn",
        "chưa có chuyện chi",
        "khu em hôm ni yên tĩnh",
        "không có việc gì cần báo",
    ],
    "doc": [
        "căn cước",
        "CCCD",
        "hộ chiếu",
        "đăng ký xe",
        "giấy phép lái xe",
        "sổ hộ khẩu",
        "thẻ BHYT",
    ],
    "admin_q": [
        "làm lại {doc} thì cần giấy tờ gì",
        "cấp đổi {doc} mất bao lâu",
        "làm {doc} online được không",
        "làm {doc} ở đâu ạ",
        "thủ tục cấp lại {doc} thế nào",
    ],
    "person": [
        "con trai tôi 10 tuổi",
        "bé gái nhà em 6 tuổi",
        "ông nội em 82 tuổi",
        "mẹ tôi bị lẫn",
        "em trai tôi 16 tuổi",
        "cháu em 4 tuổi",
        "bố tôi 70 tuổi",
    ],
    "animal": [
        "chó dại",
        "đàn chó hoang",
        "con trâu điên",
        "con rắn hổ mang",
        "tổ ong vò vẽ",
        "con bò xổng chuồng",
        "đàn ong bắp cày",
    ],
}

TEMPLATES: list[tuple[str, str, list[tuple[str, str]], int]] = [
    (
        "t-snatch",
        "theft",
        [
            ("{who} {just} bị giật {obj} {P}, {suspect}, {flee}", "P2"),
            ("{who} {just} bị móc túi mất {obj} {P}", "P2"),
            ("{who} {past} bị giật {obj} {P}, {suspect}", "P3"),
            ("{past} {who} bị trộm mất {obj} {P}, giờ mới báo", "P3"),
        ],
        40,
    ),
    (
        "t-burglary",
        "theft",
        [
            ("nhà {who} {P} {just} bị trộm đột nhập lấy {obj}, {flee}", "P2"),
            ("{past} nhà {who} {P} bị trộm cạy cửa lấy {obj} và tiền mặt", "P3"),
            ("có trộm đang lục lọi trong nhà hàng xóm {P}, {suspect}", "P2"),
        ],
        28,
    ),
    (
        "t-crash",
        "traffic",
        [
            ("{veh} vừa tông {vict} {P}, nạn nhân {sev}", "P1"),
            ("tai nạn {P}: {veh} đâm vào {vict}, {sev}, mau gọi cấp cứu", "P1"),
            ("{veh} {just} va chạm với {vict} {P}, {light}, hai bên đang cãi nhau", "P2"),
            ("{past} {veh} va chạm với {vict} {P}, {light}, giờ muốn trình báo", "P3"),
        ],
        44,
    ),
    (
        "t-racing",
        "traffic",
        [
            ("đang có nhóm thanh niên đua xe {P}, nẹt pô ầm ầm", "P2"),
            ("tối nay nhóm đua xe hẹn nhau {P}, nghe tụi nó nói trên mạng", "P2"),
            ("đêm nào cũng có đua xe {P}, người dân không ngủ được", "P3"),
        ],
        22,
    ),
    (
        "t-fight",
        "violence",
        [
            ("hai nhóm {fight_now} {P}, có đứa cầm {weapon}", "P1"),
            ("có thằng cầm {weapon} {just} đâm người {P}, nạn nhân {sev}", "P1"),
            ("{past} có đánh nhau bằng {weapon} {P}, một người bị thương đã đi viện", "P3"),
        ],
        30,
    ),
    (
        "t-brawl",
        "public_order",
        [
            ("mấy thanh niên say xỉn đang xô xát tay không {P}, chưa ai cầm hung khí", "P2"),
            ("nhà bên {noise} quá khuya {P}, giờ vẫn chưa tắt", "P2"),
            ("quán {P} tối nào cũng {noise} tới 1 giờ sáng", "P3"),
            ("{past} có đám thanh niên đánh nhau tay không {P}, giờ đã giải tán", "P3"),
        ],
        36,
    ),
    (
        "t-drugs",
        "drugs",
        [
            ("đang có mấy đứa sử dụng {drug} {P}, em thấy rõ", "P2"),
            ("{P} có người bán {drug} cho thanh niên, tối mô cũng có khách tới", "P3"),
            ("{past} ở {S} có nhóm người dùng {drug}, giờ đã đi rồi", "P3"),
        ],
        28,
    ),
    (
        "t-gambling",
        "gambling",
        [
            ("đang có {game} {P}, khoảng 15 người, có người canh", "P2"),
            ("{P} tối nào cũng có {game}, mấy tháng nay", "P3"),
            ("nhà ông hàng xóm {P} hay tổ chức {game}, báo để các anh biết", "P3"),
        ],
        28,
    ),
    (
        "t-phone-scam",
        "fraud",
        [
            (
                "có người tự xưng {scam_who} gọi bắt {who} chuyển {money}, đang chuẩn bị chuyển",
                "P2",
            ),
            ("{who} {past} bị người giả danh {scam_who} lừa chuyển {money}", "P3"),
            ("{who} {just} bị kẻ giả làm {scam_who} lừa lấy {money}, tụi nó mới đi khỏi", "P2"),
            ("nhận cuộc gọi tự xưng {scam_who} đòi {money}, có phải lừa đảo không anh", "P3"),
        ],
        40,
    ),
    (
        "t-fire",
        "fire_rescue",
        [
            ("cháy {fire_place} {P}, lửa đang bốc cao", "P1"),
            ("{fire_place} {P} đang bốc cháy, khói đen mù mịt, cứu với", "P1"),
            (
                "{past} cháy {fire_place} {P}, đã dập tắt, không ai bị thương, giờ muốn trình báo",
                "P3",
            ),
        ],
        30,
    ),
    (
        "t-drown",
        "fire_rescue",
        [
            ("có người bị đuối nước {P}, đang chới với giữa dòng", "P1"),
            ("{person} đi tắm sông {P} bị nước cuốn, chưa tìm thấy", "P1"),
        ],
        14,
    ),
    (
        "t-missing",
        "other",
        [
            (
                "{person} đi ra khỏi nhà từ sáng tới giờ chưa về, nhà ở {A}, cả nhà đang đi tìm",
                "P2",
            ),
            ("{person} bị lạc {P}, cả nhà tìm mấy tiếng chưa thấy", "P2"),
            (
                "{person} đi lạc hôm qua, giờ đã được người dân {P} đưa về an toàn,"
                " gia đình muốn cảm ơn và trình báo",
                "P3",
            ),
        ],
        24,
    ),
    (
        "t-animal",
        "other",
        [
            ("có {animal} tấn công người {P}, vừa có người bị thương nhẹ", "P2"),
            ("{animal} {P} hay đe dọa người qua lại, mong xử lý", "P3"),
        ],
        16,
    ),
    (
        "t-lost",
        "other",
        [
            ("{who} đánh rơi {doc} {P} {past}, ai nhặt được xin liên hệ", "P3"),
            ("mất {doc} và ví {P}, cần giấy xác nhận trình báo mất để làm lại", "P3"),
        ],
        18,
    ),
    (
        "t-admin",
        "admin_request",
        [
            ("cho em hỏi {admin_q}", "P3"),
            ("{greet}, cho hỏi {admin_q}", "P3"),
            ("nhà em ở {A}, {admin_q}", "P3"),
        ],
        30,
    ),
    (
        "t-greet",
        "greeting",
        [
            ("{greet}, {calm}", "P4"),
            ("{greet} ạ", "P4"),
            ("{greet}, em ở {A}, {calm}", "P4"),
            ("{calm} anh ơi, {greet}", "P4"),
        ],
        40,
    ),
    (
        "t-greet-report",
        "theft",
        [
            ("{greet}. {who} {just} bị giật {obj} {P}, {flee}", "P2"),
            ("{greet}, {calm} nhưng {past} {who} bị mất {obj} {P}", "P3"),
        ],
        16,
    ),
    (
        "t-greet-crash",
        "traffic",
        [
            ("{greet}. Có tai nạn {P}, {veh} tông {vict}, {sev}", "P1"),
        ],
        8,
    ),
    (
        "t-officer",
        "officer_conduct",
        [
            ("báo vụ {obj} bị trộm {past} mà công an xã chưa xuống làm việc", "P3"),
            ("cán bộ làm {doc} {P} đòi thêm tiền mới làm nhanh", "P3"),
            ("CSGT {P} nhận tiền của tài xế {veh}, em có quay clip", "P3"),
        ],
        24,
    ),
    (
        "t-env",
        "environment",
        [
            ("đang có ghe hút cát trái phép {P}", "P2"),
            ("{P} đêm nào cũng có ghe hút cát, bờ sông sạt lở", "P3"),
            ("có xe đang đổ trộm rác thải {P}, biển số 75C", "P2"),
            ("cơ sở chăn nuôi {P} xả thải ra sông, mùi hôi mấy tháng nay", "P3"),
        ],
        28,
    ),
]


def from_templates(rng: random.Random) -> list[Record]:
    records: list[Record] = []
    filler = PlaceFiller(rng)
    styler = Styler(rng)
    slot_re = re.compile(r"\{([a-z_]+)\}")
    for name, category, patterns, count in TEMPLATES:
        rng.seed(f"{SEED}:{name}")
        seen: set[str] = set()
        for k in range(count):
            pattern, priority = patterns[k % len(patterns)]

            def slot(m: re.Match[str]) -> str:
                return rng.choice(SLOTS[m.group(1)])

            text = slot_re.sub(slot, pattern)
            text = slot_re.sub(slot, text)  # slots inside slots ({admin_q} → {doc})
            text = text[:1].upper() + text[1:]
            fill = filler.fill(text, english=False)
            chan = pick_channel(rng, fill.text, "vi", None)
            surface = styler.variant(fill.text, category, priority, "vi", chan, 1 + k % 3)
            if surface in seen:
                continue
            seen.add(surface)
            records.append(
                Record(f"{name}~{k}", name, chan, surface, category, priority, fill.district, "vi")
            )
    return records


# ----------------------------------------------------------------------------- main


def heldout(family: str) -> bool:
    digest = hashlib.sha256(family.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 100 < HELDOUT_PERCENT


def check_locations(records: list[Record]) -> int:
    """Report messages whose location label the gazetteer would not reproduce."""
    gazetteer = Gazetteer.load()
    bad = 0
    for record in records:
        found = gazetteer.locate(split_phrases(normalize(record.text).folded)).district
        if found != record.location:
            bad += 1
            print(
                f"location {record.id}: label={record.location} gazetteer={found}"
                f" :: {record.text[:110]}",
                file=sys.stderr,
            )
    return bad


def main() -> None:
    rng = random.Random(SEED)
    records = from_handwritten(rng) + from_templates(rng)
    texts: set[str] = set()
    unique: list[Record] = []
    for r in records:
        if r.text not in texts:
            texts.add(r.text)
            unique.append(r)
    OUT.mkdir(exist_ok=True)
    train = [r for r in unique if not heldout(r.family)]
    test = [r for r in unique if heldout(r.family)]
    (OUT / "train.jsonl").write_text("".join(r.as_json() + "\n" for r in train), "utf-8")
    (OUT / "heldout.jsonl").write_text("".join(r.as_json() + "\n" for r in test), "utf-8")
    print(f"train={len(train)} heldout={len(test)}")
    print("categories:", dict(sorted(Counter(r.category for r in unique).items())))
    print("priorities:", dict(sorted(Counter(r.priority for r in unique).items())))
    if "--check" in sys.argv:
        print("location disagreements:", check_locations(unique))


if __name__ == "__main__":
    main()
