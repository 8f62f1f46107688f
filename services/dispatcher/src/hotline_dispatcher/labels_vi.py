"""Vietnamese display names for categories and districts (summaries, statistics)."""

from __future__ import annotations

from hotline.contracts.labels import Category, District

CATEGORY_VI: dict[Category, str] = {
    Category.GREETING: "chào hỏi",
    Category.TRAFFIC: "giao thông",
    Category.PUBLIC_ORDER: "trật tự công cộng",
    Category.VIOLENCE: "bạo lực",
    Category.THEFT: "trộm cắp, cướp",
    Category.DRUGS: "ma túy",
    Category.GAMBLING: "cờ bạc",
    Category.FRAUD: "lừa đảo, tín dụng đen",
    Category.FIRE_RESCUE: "cháy nổ, cứu nạn",
    Category.ENVIRONMENT: "môi trường",
    Category.OFFICER_CONDUCT: "phản ánh cán bộ",
    Category.ADMIN_REQUEST: "thủ tục hành chính",
    Category.OTHER: "khác",
}

DISTRICT_VI: dict[District, str] = {
    District.HUE_CITY: "thành phố Huế",
    District.PHONG_DIEN: "huyện Phong Điền",
    District.QUANG_DIEN: "huyện Quảng Điền",
    District.HUONG_TRA: "thị xã Hương Trà",
    District.HUONG_THUY: "thị xã Hương Thủy",
    District.PHU_VANG: "huyện Phú Vang",
    District.PHU_LOC: "huyện Phú Lộc",
    District.NAM_DONG: "huyện Nam Đông",
    District.A_LUOI: "huyện A Lưới",
}
