from nlu.normalize import normalize


def test_full_width_traditional_and_case_fold() -> None:
    n = normalize("第一次申請社會保障卡要帶什麼證件 ＡＢＣ１２３")
    assert n.text == "第一次申请社会保障卡要带什么证件 abc123"


def test_offsets_map_back_to_original_text() -> None:
    original = "  我的電話是 １３９ １２３４ ５６７８，ＡＢＣ  "
    n = normalize(original)
    assert n.text == "我的电话是 139 1234 5678,abc"
    start = n.text.index("139")
    s, e = n.span_to_original(start, start + len("139 1234 5678"))
    assert original[s:e] == "１３９ １２３４ ５６７８"


def test_whitespace_runs_collapse_and_strip() -> None:
    assert normalize("\t社保卡 \n\n 挂失 ").text == "社保卡 挂失"


def test_empty_text() -> None:
    n = normalize("")
    assert n.text == "" and n.origin == (0,)
