"""Words on the page, Vietnamese first with English beside it (pure).

`text(key, lang)` for the interface, `label(kind, value, lang)` for the shared vocabularies
(categories, districts, channels, states, ...). A test checks that every key used by a template
exists in both languages.
"""

from __future__ import annotations

import re
from typing import Literal

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    # navigation and frame
    "app.title": ("Đường dây nóng — Phòng Tham mưu", "Hotline — Staff Office"),
    "nav.queue": ("Hàng đợi", "Queue"),
    "nav.desk": ("Ghi cuộc gọi", "Call desk"),
    "nav.board": ("Trực ban", "On call"),
    "nav.directives": ("Chỉ đạo", "Directives"),
    "nav.today": ("Hôm nay", "Today"),
    "nav.sign_out": ("Đăng xuất", "Sign out"),
    "nav.language": ("English", "Tiếng Việt"),
    "live.connected": ("Trực tuyến", "Live"),
    "live.offline": ("Mất kết nối, đang thử lại…", "Offline, retrying…"),
    # sign-in
    "signin.title": ("Đăng nhập", "Sign in"),
    "signin.token": ("Mã truy cập", "Access token"),
    "signin.help": (
        "Nhập mã truy cập API do quản trị cấp cho anh/chị.",
        "Enter the API access token your administrator gave you.",
    ),
    "signin.submit": ("Đăng nhập", "Sign in"),
    "signin.invalid": ("Mã truy cập không đúng.", "That token is not valid."),
    "signin.unavailable": (
        "Không kết nối được máy chủ điều phối; thử lại sau.",
        "The dispatcher cannot be reached; try again shortly.",
    ),
    "signin.too_many": ("Thử quá nhiều lần; chờ một phút.", "Too many attempts; wait a minute."),
    "signin.signed_in_as": ("Đăng nhập:", "Signed in:"),
    # errors
    "error.csrf": (
        "Biểu mẫu đã hết hạn hoặc không hợp lệ. Tải lại trang và thử lại.",
        "This form expired or is not valid. Reload the page and try again.",
    ),
    "error.forbidden": ("Anh/chị không có quyền làm việc này.", "You may not do this."),
    "error.not_found": ("Không tìm thấy.", "Not found."),
    "error.conflict": ("Không thực hiện được:", "Could not do it:"),
    "error.invalid": ("Dữ liệu chưa hợp lệ:", "Please check the form:"),
    "error.unavailable": (
        "Máy chủ điều phối không trả lời; thử lại sau.",
        "The dispatcher did not answer; try again shortly.",
    ),
    "error.title": ("Có lỗi", "Something went wrong"),
    "error.back": ("Quay lại", "Back"),
    # queue
    "queue.title": ("Hàng đợi vụ việc", "Case queue"),
    "queue.pinned": ("Khẩn cấp chưa tiếp nhận", "Urgent, not yet acknowledged"),
    "queue.cases": ("Vụ việc", "Cases"),
    "queue.empty": ("Không có vụ việc nào khớp bộ lọc.", "No case matches these filters."),
    "queue.greetings": ("Tin chào hỏi hôm nay", "Greetings today"),
    "queue.greetings_show": ("Xem", "Show"),
    "queue.its_a_report": (
        "Đây là phản ánh, không phải chào hỏi",
        "This is a report, not a greeting",
    ),
    "queue.open_case": ("Sửa phân loại và mở vụ việc", "Correct and open a case"),
    "queue.report_opened": (
        "Đã sửa phân loại; vụ việc đã được mở và giao cho cán bộ trực.",
        "Triage corrected; the case is open and assigned to the on-call officer.",
    ),
    "queue.messages": ("Tin nhắn gần đây khớp tìm kiếm", "Recent messages matching the search"),
    "queue.filter": ("Lọc", "Filter"),
    "queue.clear": ("Bỏ lọc", "Clear"),
    "queue.search": ("Tìm trong nội dung", "Search the text"),
    "queue.within": ("Tìm tin nhắn trong", "Search messages from"),
    "queue.within_today": ("Hôm nay", "Today"),
    "queue.within_7d": ("7 ngày qua", "Last 7 days"),
    "queue.within_30d": ("30 ngày qua", "Last 30 days"),
    "queue.within_all": ("Mọi ngày", "All days"),
    "queue.any": ("Tất cả", "Any"),
    "queue.open": ("Đang mở", "Open"),
    "queue.sort": ("Sắp xếp", "Sort"),
    "queue.sort_newest": ("Mới nhất", "Newest"),
    "queue.sort_urgent": ("Khẩn nhất", "Most urgent"),
    "queue.total": ("vụ", "cases"),
    "queue.pages": ("Các trang", "Pages"),
    "queue.page": ("Trang", "Page"),
    "queue.page_prev": ("Trang trước", "Previous page"),
    "queue.page_next": ("Trang sau", "Next page"),
    "queue.updated": ("Cập nhật", "Updated"),
    # fields
    "field.state": ("Trạng thái", "State"),
    "field.priority": ("Mức độ", "Priority"),
    "field.category": ("Lĩnh vực", "Category"),
    "field.unit": ("Đơn vị", "Unit"),
    "field.district": ("Địa bàn", "District"),
    "field.channel": ("Kênh", "Channel"),
    "field.case": ("Mã vụ việc", "Case"),
    "field.summary": ("Tóm tắt", "Summary"),
    "field.assignee": ("Cán bộ xử lý", "Assignee"),
    "field.opened": ("Tiếp nhận", "Received"),
    "field.reporter": ("Người phản ánh", "Reporter"),
    "field.text": ("Nội dung", "Text"),
    "field.reason": ("Lý do", "Reason"),
    "field.note": ("Ghi chú", "Note"),
    "field.outcome": ("Kết quả xử lý", "Outcome"),
    "field.deadline": ("Hạn báo cáo", "Report-back deadline"),
    "field.directive": ("Nội dung chỉ đạo", "Directive"),
    "field.person": ("Cán bộ", "Person"),
    "field.duty": ("Nhiệm vụ", "Duty"),
    "field.hours": ("Số giờ", "Hours"),
    "field.start": ("Bắt đầu", "Start"),
    "field.replaces": ("Thay cho", "Replaces"),
    "field.none": ("(không)", "(none)"),
    "field.masked": ("đã che", "masked"),
    "field.actor": ("Người thực hiện", "By"),
    "field.when": ("Thời gian", "When"),
    # case page
    "case.timeline": ("Diễn biến", "Timeline"),
    "case.reports": ("Các phản ánh", "Reports"),
    "case.directives": ("Chỉ đạo", "Directives"),
    "case.actions": ("Xử lý", "Actions"),
    "case.acknowledge": ("Tiếp nhận (dừng nhắc)", "Acknowledge (stops escalation)"),
    "case.resolve": ("Hoàn thành xử lý", "Resolve"),
    "case.close": ("Đóng hồ sơ", "Close"),
    "case.reopen": ("Mở lại", "Reopen"),
    "case.reassign": ("Giao đơn vị/cán bộ khác", "Reassign"),
    "case.note": ("Thêm ghi chú", "Add a note"),
    "case.directive": ("Ghi chỉ đạo", "Record a directive"),
    "case.report_back": ("Báo cáo kết quả", "Report back"),
    "case.correct": ("Sửa phân loại", "Correct the triage"),
    "case.merge": ("Gộp vào vụ việc khác", "Merge into another case"),
    "case.merge_into": ("Mã vụ việc giữ lại", "Case to keep"),
    "case.split": ("Tách thành vụ việc riêng", "Split into its own case"),
    "case.callback_done": ("Đã gọi lại", "Called back"),
    "case.reached": ("Liên lạc được", "Reached the caller"),
    "case.not_reached": ("Không liên lạc được", "Could not reach"),
    "case.merged_into": ("Đã gộp vào", "Merged into"),
    "case.split_from": ("Tách từ", "Split from"),
    "case.overdue": ("Quá hạn", "Overdue"),
    "case.done": ("Đã thực hiện.", "Done."),
    "case.viewer_note": (
        "Anh/chị chỉ có quyền xem; số điện thoại được che.",
        "You may only read; phone numbers are masked.",
    ),
    "case.minutes": ("phút", "minutes"),
    "case.hours": ("giờ", "hours"),
    "case.escalation": ("Chuỗi báo động", "Escalation chain"),
    "case.responsible": ("Đơn vị xử lý", "Responding unit"),
    "case.informed": ("Thông báo cho", "Informed"),
    "case.rule": ("Quy tắc", "Rule"),
    "case.kept_apart": ("Giống vụ", "Alike case"),
    "case.kept_apart_locality": (
        "nhưng ở địa điểm khác: nếu là cùng một vụ, hãy gộp",
        "but at another place: merge if it is one incident",
    ),
    "case.kept_apart_address": (
        "nhưng khác số nhà: nếu là cùng một vụ, hãy gộp",
        "but at another address: merge if it is one incident",
    ),
    "case.routing_why": ("Căn cứ phân công", "Why this assignment"),
    "case.confidence": ("độ tin cậy", "confidence"),
    "case.back": ("← Hàng đợi", "← Queue"),
    # desk
    "desk.title": ("Ghi nhận cuộc gọi", "Log a phone call"),
    "desk.caller": ("Số người gọi", "Caller's number"),
    "desk.caller_name": ("Tên người gọi (nếu có)", "Caller's name (optional)"),
    "desk.summary": ("Nội dung phản ánh", "What was reported"),
    "desk.place": ("Địa điểm", "Place"),
    "desk.submit": ("Gửi vào hệ thống", "Send into the pipeline"),
    "desk.sent": ("Đã gửi. Mã tin:", "Sent. Message id:"),
    "desk.duplicate": ("Tin này đã được gửi trước đó.", "This call was already sent."),
    "desk.waiting": ("Đang phân loại và giao việc…", "Being triaged and assigned…"),
    "desk.case_opened": ("Vụ việc:", "Case:"),
    "desk.no_case": (
        "Không mở vụ việc (tin chào hỏi hoặc không cần xử lý).",
        "No case opened (a greeting, or nothing to act on).",
    ),
    "desk.callbacks": ("Cuộc gọi nhỡ cần gọi lại", "Missed calls to return"),
    "desk.no_callbacks": ("Không có cuộc gọi nhỡ nào chờ gọi lại.", "No missed call to return."),
    "desk.log_another": ("Ghi cuộc gọi khác", "Log another call"),
    "desk.ingest_error": (
        "Hệ thống tiếp nhận không nhận tin; thử lại.",
        "Ingest did not accept it; try again.",
    ),
    # directives
    "directives.title": ("Chỉ đạo của Giám đốc", "The Director's directives"),
    "directives.intro": (
        "Chỉ đạo của Giám đốc (hoặc Phòng Tham mưu thừa lệnh) đang chờ đơn vị báo cáo, quá hạn "
        "lâu nhất lên đầu; đơn vị báo cáo kết quả trên trang vụ việc.",
        "The Director's directives (or the Staff Office's on his behalf) waiting for the unit's "
        "report-back, the longest overdue first; units report back on the case page.",
    ),
    "directives.waiting": ("Chờ báo cáo", "Waiting for a report-back"),
    "directives.reported": ("Đã báo cáo gần đây", "Reported lately"),
    "directives.none_waiting": (
        "Không có chỉ đạo nào chờ báo cáo.",
        "No directive is waiting for a report-back.",
    ),
    "directives.none_reported": ("Chưa có báo cáo nào.", "No report-back yet."),
    "directives.all_units": ("Tất cả đơn vị", "All units"),
    "directives.show": ("Xem", "Show"),
    "directives.due_in": ("còn {gap}", "due in {gap}"),
    "directives.overdue_by": ("quá hạn {gap}", "overdue by {gap}"),
    "directives.reported_late": ("trễ {gap}", "{gap} late"),
    # on-call board
    "board.title": ("Trực ban hiện tại", "Who is on call now"),
    "board.commander": ("Chỉ huy", "Commander"),
    "board.open": ("Đang mở", "Open"),
    "board.unacknowledged": ("Chưa tiếp nhận", "Unacknowledged"),
    "board.overdue": ("Quá hạn tiếp nhận", "Overdue"),
    "board.overrides": ("Điều chỉnh ca trực", "Shift overrides"),
    "board.no_overrides": ("Chưa có điều chỉnh nào.", "No overrides."),
    "board.add_override": ("Thêm điều chỉnh ca trực", "Add a shift override"),
    "board.cancel": ("Huỷ", "Cancel"),
    "board.active": ("đang áp dụng", "in force"),
    "board.planned": ("sắp tới", "upcoming"),
    "board.nobody": ("Không có ai trực", "Nobody on call"),
    "board.contacts_hidden": ("(liên lạc: chỉ Phòng Tham mưu xem)", "(contacts: staff only)"),
    "board.local_time": ("Giờ địa phương", "Local time"),
    # today
    "today.title": ("Số liệu trong ngày", "Today's figures"),
    "today.messages": ("Tin nhắn, cuộc gọi", "Messages and calls"),
    "today.reports": ("Phản ánh vụ việc", "Reports"),
    "today.greetings": ("Tin chào hỏi", "Greetings"),
    "today.callbacks": ("Cuộc gọi nhỡ", "Missed calls"),
    "today.new_cases": ("Vụ việc mới", "New cases"),
    "today.resolved": ("Đã xử lý xong", "Resolved"),
    "today.by_channel": ("Theo kênh", "By channel"),
    "today.by_category": ("Theo lĩnh vực", "By category"),
    "today.by_district": ("Theo địa bàn", "By district"),
    "today.by_unit": ("Theo đơn vị", "By unit"),
    "today.top_places": ("Nơi được phản ánh nhiều nhất", "Most reported places"),
    "today.by_hour": ("Theo giờ", "By hour"),
    "today.ack": ("Thời gian tiếp nhận (trung vị)", "Median time to acknowledge"),
    "today.ack_cases": ("vụ", "cases"),
    "today.ack_acked": ("đã tiếp nhận", "acknowledged"),
    "today.director_line": (
        "Trong ngày nhận {messages} tin nhắn, trong đó {reports} tin phản ánh vụ việc, "
        "còn lại {greetings} tin chào hỏi.",
        "Today: {messages} messages, of which {reports} reports and {greetings} greetings.",
    ),
    "today.export": ("Tải dữ liệu sửa phân loại (JSONL)", "Download triage corrections (JSONL)"),
    "today.day": ("Ngày", "Day"),
    "today.show": ("Xem", "Show"),
    # actions
    "action.save": ("Lưu", "Save"),
    "action.send": ("Gửi", "Send"),
}

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "category": {
        "greeting": ("Chào hỏi", "Greeting"),
        "traffic": ("Giao thông", "Traffic"),
        "public_order": ("Trật tự công cộng", "Public order"),
        "violence": ("Bạo lực", "Violence"),
        "theft": ("Trộm cắp, cướp", "Theft, robbery"),
        "drugs": ("Ma túy", "Drugs"),
        "gambling": ("Cờ bạc", "Gambling"),
        "fraud": ("Lừa đảo, tín dụng đen", "Fraud, loan sharks"),
        "fire_rescue": ("Cháy nổ, cứu nạn", "Fire, rescue"),
        "environment": ("Môi trường", "Environment"),
        "officer_conduct": ("Phản ánh cán bộ", "Officer conduct"),
        "admin_request": ("Thủ tục hành chính", "Administrative request"),
        "other": ("Khác", "Other"),
    },
    "district": {
        "hue_city": ("TP Huế", "Huế City"),
        "phong_dien": ("Phong Điền", "Phong Điền"),
        "quang_dien": ("Quảng Điền", "Quảng Điền"),
        "huong_tra": ("Hương Trà", "Hương Trà"),
        "huong_thuy": ("Hương Thủy", "Hương Thủy"),
        "phu_vang": ("Phú Vang", "Phú Vang"),
        "phu_loc": ("Phú Lộc", "Phú Lộc"),
        "nam_dong": ("Nam Đông", "Nam Đông"),
        "a_luoi": ("A Lưới", "A Lưới"),
        "unknown": ("Chưa rõ", "Unknown"),
    },
    "channel": {
        "sms": ("SMS", "SMS"),
        "zalo": ("Zalo", "Zalo"),
        "viber": ("Viber", "Viber"),
        "whatsapp": ("WhatsApp", "WhatsApp"),
        "telegram": ("Telegram", "Telegram"),
        "voice": ("Cuộc gọi", "Phone call"),
        "web": ("Cổng web", "Web form"),
        "desk": ("Tổ giúp việc ghi", "Logged at the desk"),
    },
    "state": {
        "new": ("Mới", "New"),
        "assigned": ("Đã giao, chờ tiếp nhận", "Assigned, awaiting ack"),
        "acknowledged": ("Đã tiếp nhận", "Acknowledged"),
        "resolved": ("Đã xử lý", "Resolved"),
        "closed": ("Đã đóng", "Closed"),
    },
    "priority": {
        "P1": ("P1 khẩn cấp", "P1 emergency"),
        "P2": ("P2 cần xử lý ngay", "P2 urgent"),
        "P3": ("P3 thông thường", "P3 routine"),
        "P4": ("P4 không cần xử lý", "P4 no action"),
    },
    "kind": {
        "message": ("Tin nhắn", "Message"),
        "call_answered": ("Cuộc gọi", "Call"),
        "call_missed": ("Cuộc gọi nhỡ", "Missed call"),
        "voicemail": ("Thư thoại", "Voicemail"),
        "call_summary": ("Tóm tắt cuộc gọi", "Call summary"),
        "report": ("Phản ánh", "Report"),
        "callback": ("Gọi lại", "Callback"),
    },
    "action": {
        "new_case": ("Mở vụ việc", "New case"),
        "merged": ("Gộp vào vụ việc", "Merged"),
        "followup": ("Bổ sung", "Follow-up"),
        "callback": ("Gọi lại", "Callback"),
        "greeting": ("Chào hỏi", "Greeting"),
        "acknowledgement": ("Cán bộ xác nhận", "Officer reply"),
    },
    "role": {
        "viewer": ("Xem", "Viewer"),
        "call_taker": ("Tổ giúp việc", "Call-taker"),
        "officer": ("Cán bộ", "Officer"),
        "staff": ("Phòng Tham mưu", "Staff Office"),
        "director": ("Giám đốc", "Director"),
        "admin": ("Quản trị", "Admin"),
        "service": ("Hệ thống", "System"),
        "commander": ("Chỉ huy", "Commander"),
        "staff_leader": ("Trực chỉ huy", "Duty leader"),
    },
    "entry": {
        "opened": ("Tiếp nhận phản ánh", "Report received"),
        "triaged": ("Phân loại", "Triaged"),
        "assigned": ("Giao xử lý", "Assigned"),
        "report_added": ("Phản ánh bổ sung", "Report added"),
        "acknowledged": ("Đã tiếp nhận", "Acknowledged"),
        "escalated": ("Báo động cấp trên", "Escalated"),
        "resolved": ("Hoàn thành", "Resolved"),
        "closed": ("Đóng hồ sơ", "Closed"),
        "reopened": ("Mở lại", "Reopened"),
        "reassigned": ("Giao lại", "Reassigned"),
        "note_added": ("Ghi chú", "Note"),
        "directive_added": ("Chỉ đạo", "Directive"),
        "directive_reported": ("Báo cáo kết quả chỉ đạo", "Directive reported"),
        "reminder_due": ("Nhắc hạn báo cáo", "Reminder"),
        "triage_corrected": ("Sửa phân loại", "Triage corrected"),
        "callback_done": ("Đã gọi lại", "Called back"),
        "delivery": ("Gửi thông báo", "Notification"),
        "merged": ("Gộp vụ việc", "Case merged in"),
        "merged_into": ("Gộp vào vụ việc khác", "Merged into another case"),
        "split": ("Tách phản ánh", "Report split off"),
        "split_from": ("Tách từ vụ việc", "Split from a case"),
        "opened_by_correction": (
            "Mở vụ việc khi sửa phân loại",
            "Opened when the triage was corrected",
        ),
        "call_logged": ("Ghi nhận cuộc gọi", "Call logged"),
        "reporter_called": (
            "Người phản ánh gọi đến (cuộc gọi nhỡ, đã tạo việc gọi lại)",
            "The reporter called (missed; a callback task was opened)",
        ),
    },
    "duty": {
        "officer": ("Trực ban", "Duty officer"),
        "call_taker": ("Nghe điện thoại", "Call-taker"),
        "staff_leader": ("Trực chỉ huy", "Duty leader"),
        "commander": ("Chỉ huy", "Commander"),
        "director": ("Giám đốc", "Director"),
    },
    "issuer": {
        "director": ("Giám đốc chỉ đạo", "the Director's"),
        "staff_office": ("Phòng Tham mưu, thừa lệnh Giám đốc", "Staff Office, for the Director"),
    },
    # What a delivery was for (the contract's DeliveryPurpose).
    "purpose": {
        "alert": ("Báo động", "Alert"),
        "escalation": ("Báo cấp trên", "Escalation"),
        "reminder": ("Nhắc lại", "Reminder"),
        "directive": ("Chỉ đạo", "Directive"),
        "inform": ("Thông báo để biết", "For information"),
        "callback_task": ("Gọi lại người dân", "Call back"),
        "citizen_receipt": ("Trả lời người dân: đã tiếp nhận", "Reply to citizen: received"),
        "citizen_courtesy": ("Trả lời người dân: cảm ơn", "Reply to citizen: thanks"),
        "citizen_closure": ("Trả lời người dân: đã xử lý", "Reply to citizen: resolved"),
    },
    "delivery": {
        "sent": ("đã gửi", "sent"),
        "failed": ("lỗi, thử kênh khác", "failed, next channel"),
        "dead": ("không gửi được", "undeliverable"),
        "suppressed": ("không gửi (có chủ ý)", "suppressed"),
    },
}


def text(key: str, lang: str) -> str:
    """The interface text for `key`; the key itself when unknown (a test keeps that from
    reaching a page)."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def label(kind: str, value: object, lang: str) -> str:
    """A vocabulary value's display name (`category`, `district`, `channel`, `state`, ...)."""
    if value is None:
        return text("field.none", lang)
    pair = LABELS.get(kind, {}).get(str(value))
    if pair is None:
        return str(value)
    return pair[1] if lang == "en" else pair[0]


def choose_lang(value: str | None) -> Lang:
    return "en" if value == "en" else "vi"


# --------------------------------------------------------------------------- triage reasons

# The classifier writes its reasons for an English-reading audit ("urgency: 'đang đâm' → danger
# now"); the Staff Office reads Vietnamese. A reason is `<kind>: <detail>`, where quoted parts
# are the citizen's own words (kept as they are), codes are category and district codes (shown
# by name) and the rest is a small fixed vocabulary (below). Anything else is shown as written.
REASON_KINDS: dict[str, tuple[str, str]] = {
    "category": ("lĩnh vực", "category"),
    "urgency": ("khẩn cấp", "urgency"),
    "time": ("thời điểm", "time"),
    "place": ("địa điểm", "place"),
    "rule": ("quy tắc", "rule"),
    "priority": ("mức độ", "priority"),
}
# Longest first, so that "→ danger now" is not read as "→ ... now".
REASON_WORDS: tuple[tuple[str, str], ...] = (
    ("ignored (page impersonating police)", "bỏ qua (trang mạo danh công an)"),
    ("ignored (where the suspect fled)", "bỏ qua (nơi đối tượng bỏ trốn)"),
    ("call without words: call back soon", "cuộc gọi không lời: gọi lại ngay"),
    ("missed call: call back soon", "cuộc gọi nhỡ: gọi lại ngay"),
    ("dangerous animal hurting people now", "thú dữ đang gây thương tích"),
    ("person still missing", "người vẫn mất tích"),
    ("greeting, no action", "lời chào, không cần xử lý"),
    ("(heading towards)", "(nơi đang hướng tới)"),
    ("(residence)", "(nơi cư trú)"),
    ("(origin)", "(nơi xuất phát)"),
    ("empty message", "tin nhắn trống"),
    ("sticker only", "chỉ có sticker"),
    ("emoji only", "chỉ có emoji"),
    ("filler only", "chỉ lời chào"),
    ("no words", "không có chữ"),
    ("danger now", "đang nguy hiểm"),
    ("received", "nhận lúc"),
    ("nearly", "gần"),
    ("about", "khoảng"),
    ("over", "hơn"),
    ("a few", "vài"),
    ("days", "ngày"),
    ("day", "ngày"),
    ("weeks", "tuần"),
    ("week", "tuần"),
    ("months", "tháng"),
    ("month", "tháng"),
    ("years", "năm"),
    ("year", "năm"),
    ("min", "phút"),
    ("h", "giờ"),
    ("ago", "trước"),
    ("now", "lúc này"),
    ("past", "đã qua"),
)
# The citizen's words, as the classifier quotes them: an apostrophe followed by a letter is
# inside the quote ("'can't wake her up'").
QUOTED = re.compile(r"((?<!\w)'(?:[^']|'(?=\w))*'(?!\w))")
_WORD = re.compile(
    "|".join(
        rf"(?<![\w']){re.escape(en)}(?![\w'])"
        for en, _ in sorted(REASON_WORDS, key=lambda p: -len(p[0]))
    )
)
_VI_WORDS = dict(REASON_WORDS)


def reason(text: str, lang: str) -> str:
    """A classifier reason in the page's language (English: as written)."""
    kind, sep, detail = text.partition(": ")
    if lang == "en" or not sep or kind not in REASON_KINDS:
        return text
    parts = QUOTED.split(detail)  # odd indexes: the citizen's words, kept
    for i in range(0, len(parts), 2):
        plain = parts[i]
        if kind == "category":
            code, space, rest = plain.partition(" ")
            plain = label("category", code, lang) + space + rest
        elif kind == "place" and "→ " in plain:
            head, _, tail = plain.partition("→ ")
            code, space, rest = tail.partition(" ")
            plain = f"{head}→ {label('district', code, lang)}{space}{rest}"
        parts[i] = _WORD.sub(lambda m: _VI_WORDS[m.group(0)], plain)
    return f"{REASON_KINDS[kind][0]}: {''.join(parts)}"
