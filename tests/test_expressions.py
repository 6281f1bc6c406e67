"""The safe expression evaluator: real-world forms, errors, bounds and fuzzing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpm import errors
from bpm.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_SEQUENCE,
    MAX_SOURCE_LENGTH,
    MAX_WORK,
    METHODS,
    Expression,
    ExpressionError,
    WorkMeter,
    compile_expression,
    compile_template,
    record_work,
)

ROOM = {"owner": "kermit", "size": 12}
ORDER = {"items": [{"price": 12.5}, {"price": 3}], "total": 15.5}
VARS: dict[str, Any] = {
    "input": 1,
    "approved": True,
    "done": False,
    "notEnoughInformation": False,
    "nrOfCompletedInstances": 3,
    "nrOfInstances": 5,
    "counter": 5,
    "RoomObject": ROOM,
    "order": ORDER,
    "list": [],
    "name": "Ann",
    "a": "x",
    "b": "z",
    "x": 7,
    "y": "a",
    "fraud": True,
    "val": 0,
    "answer": "Yes",
    "skipParallel": False,
    "work_done": "Yes",
    "ApprovalResult": "Yes",
    "u": 1,
    "variables": {"takeJoin1": True},
    "initiator": "kermit",
    "id": 42,
    "users": ["kermit", "gonzo"],
    "none": None,
    "Vacation Approval": "Approved",
}


def value(text: str, variables: Mapping[str, Any] = VARS, language: str | None = None) -> Any:
    return compile_expression(text, language).evaluate(variables)


def condition(text: str, variables: Mapping[str, Any] = VARS) -> bool:
    return compile_expression(text).evaluate_condition(variables)


def error_of(action: Callable[[], Any]) -> ExpressionError:
    """Run ``action``; it must raise ExpressionError (and nothing else) within the work budget.

    Compiling is bounded by the source length and node count; evaluating by the
    work units the evaluator counts (never by seconds: the machine may be busy).
    """
    with record_work() as work, pytest.raises(ExpressionError) as info:
        action()
    assert work.largest <= MAX_WORK
    return info.value


def compile_error(text: str, language: str | None = None) -> str:
    return str(error_of(lambda: compile_expression(text, language)))


def eval_error(text: str, variables: Mapping[str, Any] = VARS) -> str:
    expression = compile_expression(text)
    return str(error_of(lambda: expression.evaluate(variables)))


# --------------------------------------------------------------------------- real-world forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${input == 1}", True),
        ("${input <= 2}", True),
        ("${!approved}", False),
        ("${approved}", True),
        ("#{approved}", True),
        ("${notEnoughInformation == 'false'}", True),
        ("${notEnoughInformation == 'true'}", False),
        ("${nrOfCompletedInstances/nrOfInstances >= 0.6 }", True),
        ("${nrOfCompletedInstances/nrOfInstances >= 0.7}", False),
        ("${counter <= 5}", True),
        ("${order.items[0].price > 10 && order.total gt 5}", True),
        ("${order.items[1].price > 10 && order.total gt 5}", False),
        ("${empty list}", True),
        ("${empty missing}", True),
        ("${empty RoomObject.missing}", True),
        ("${not empty name}", True),
        ("${a eq 'x' or b ne 'y'}", True),
        ("${a ne 'x' or b eq 'y'}", False),
        ("= approved", True),
        ("=fraud", True),
        ('= x > 5 and y = "a"', True),
        ('= x > 5 and y = "b"', False),
        ("= not(done)", True),
        ("= not(approved)", False),
        ("x < 1", False),
        ("answer == 'Yes'", True),
        ("not val", True),
        ("skipParallel == False", True),
        ("skipParallel == True", False),
        ("work_done == 'Yes'", True),
        ('ApprovalResult=="Yes"', True),
        ("u > 0", True),
        ("${variables.takeJoin1}", True),
        ("true", True),
        ("False", False),
        ("  ${ input  ==  1 }\n", True),
    ],
)
def test_real_world_conditions(text: str, expected: bool) -> None:
    assert condition(text) is expected


def test_property_paths_and_indexes() -> None:
    assert value("${RoomObject.owner}") == "kermit"
    assert value("${RoomObject['owner']}") == "kermit"
    assert value('${RoomObject["size"] * 2}') == 24
    assert value("${order.items[-1].price}") == 3
    assert value("${users[1]}") == "gonzo"
    assert value("${name[0]}") == "A"


def test_ternary_and_python_conditional() -> None:
    assert value("${approved ? 'yes' : 'no'}") == "yes"
    assert value("${done ? 'yes' : input == 1 ? 'one' : 'other'}") == "one"
    assert value("'big' if x > 5 else 'small'") == "big"
    assert value("'big' if x > 50 else 'mid' if x > 5 else 'small'") == "mid"
    assert value('= if x > 5 then "big" else "small"') == "big"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 3 ** 2", 512),
        ("-2 ** 2", -4),
        ("2 ** -1", 0.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("7 mod 3", 1),
        ("7 div 2", 3.5),
        ("7 / 2", 3.5),
        ("1.5 + .5", 2.0),
        ("1e3", 1000.0),
        ("'a' + 'b'", "ab"),
        ("'ab' * 3", "ababab"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("[1, 2,]", [1, 2]),
        ("[]", []),
        ("1 == 1.0", True),
        ("1 < 2 < 3", True),
        ("3 > 2 > 2", False),
        ("1 = 1", True),
        ("true == 'true'", True),
        ("false == 'FALSE'", True),
        ("true == 1", False),
        ("null == None", True),
        ("'a' in ['a', 'b']", True),
        ("'c' not in ['a', 'b']", True),
        ("'ell' in 'hello'", True),
        ("'owner' in RoomObject", True),
        ("none is None", True),
        ("x is not None", True),
        ("not 1 == 2", True),
        ("!approved == false", True),
        ("'it\\'s' + \"\\n\"", "it's\n"),
        ("'\\u0041\\d'", "A\\d"),
        ("x > 5 && y == 'a' || false", True),
        ("true or 1 / 0", True),
        ("false and 1 / 0", False),
    ],
)
def test_operators(text: str, expected: Any) -> None:
    result = value(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("len(users)", 2),
        ("len('abc')", 3),
        ("str(true) + str(null) + str(1.5) + str([1, 'a'])", 'true1.5[1, "a"]'),
        ("int('42') + int(2.9)", 44),
        ("float('1.5')", 1.5),
        ("abs(-3)", 3),
        ("min(3, 1, 2)", 1),
        ("max([3, 1, 2])", 3),
        ("max('b', 'a')", "b"),
        ("round(2.675, 2)", 2.67),
        ("round(2.5)", 2),
        ("lower('AbC') + upper('x')", "abcX"),
        ("contains(users, 'gonzo')", True),
        ("contains('hello', 'll')", True),
        ("users.size()", 2),
        ("name.length()", 3),
        ("list.isEmpty()", True),
        ("name.equals('Ann')", True),
        ("name.equalsIgnoreCase('aNN')", True),
        ("users.contains('kermit')", True),
        ("name.startsWith('A') && name.endsWith('n')", True),
        ("' Ab '.trim().toLowerCase() + 'c'.toUpperCase()", "abC"),
    ],
)
def test_whitelisted_functions_and_methods(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_whitelists_are_documented() -> None:
    expected = {"len", "str", "int", "float", "abs", "min", "max", "round", "lower", "upper", "contains"}
    vendors = {"now", "dateTime", "today", "date", "date and time", "duration"}  # see test_expression_vendors.py
    assert {name for name in FUNCTIONS if not name.startswith("variables:")} == expected | vendors
    assert {"size", "length", "isEmpty", "equals", "contains", "startsWith", "endsWith"} <= set(METHODS)
    assert {"toLowerCase", "toUpperCase", "trim"} <= set(METHODS)
    assert all(isinstance(doc, str) and doc for doc in [*FUNCTIONS.values(), *METHODS.values()])


def test_juel_string_conditions_convert_like_juel() -> None:
    flags = {"flag": "false", "yes": "TRUE", "other": "yes"}
    assert compile_expression("${flag}").evaluate_condition(flags) is False
    assert compile_expression("${yes}").evaluate_condition(flags) is True
    assert compile_expression("${other}").evaluate_condition(flags) is False
    assert compile_expression("${!flag}").evaluate(flags) is True
    assert compile_expression("flag").evaluate_condition(flags) is True  # Python truthiness


@pytest.mark.parametrize("falsy", [None, False, 0, 0.0, "", [], {}])
def test_falsy_values(falsy: Any) -> None:
    assert compile_expression("v").evaluate_condition({"v": falsy}) is False
    assert compile_expression("${v}").evaluate_condition({"v": falsy}) is False


@pytest.mark.parametrize("truthy", [True, 1, -0.5, "x", [0], {"a": None}])
def test_truthy_values(truthy: Any) -> None:
    assert compile_expression("v").evaluate_condition({"v": truthy}) is True


def test_feel_dialect() -> None:
    assert value('Vacation Approval = "Approved"', language="https://www.omg.org/spec/DMN/20191111/FEEL/")
    assert value("= users[1]") == "kermit"  # FEEL lists are 1-based
    assert value("= users[-1]") == "gonzo"
    assert value("users[1]") == "gonzo"
    assert value('= "a" + "b"') == "ab"


# --------------------------------------------------------------------------- FEEL loops

RISKS = {"none": [], "green": ["green"], "yellow": ["yellow", "yellow"], "mixed": ["yellow", "red"]}


@pytest.mark.parametrize(
    ("levels", "red", "all_yellow"),
    [("none", False, True), ("green", False, False), ("yellow", False, True), ("mixed", True, False)],
)
def test_quantifiers_of_the_miwg_c90_risk_gateway(levels: str, red: bool, all_yellow: bool) -> None:
    variables = {"riskLevels": RISKS[levels]}
    assert condition('= some risk in riskLevels satisfies risk = "red"', variables) is red
    assert condition('= every risk in riskLevels satisfies risk = "yellow"', variables) is all_yellow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("some x in [1, 2, 3] satisfies x > 2", True),
        ("some x in [1, 2, 3] satisfies x > 3", False),
        ("some x in [] satisfies true", False),
        ("every x in [1, 2, 3] satisfies x > 0", True),
        ("every x in [1, 2, 3] satisfies x > 1", False),
        ("every x in [] satisfies false", True),
        ("every x in users satisfies len(x) > 4", True),
        ('= some u in users satisfies u = "gonzo"', True),
        ("${every u in users satisfies u.startsWith('k')}", False),
        ("#{some u in users satisfies u eq 'kermit'}", True),
        # the body reaches as far as it can; the loop is an operand like any other
        ("some x in [1, 2] satisfies x > 1 and x < 3", True),
        ("not (some x in [1, 2] satisfies x > 5)", True),
        ("approved and every x in [1] satisfies x == 1", True),
        ("(some x in [1] satisfies x = 1) == (every x in [] satisfies false)", True),
        ("'yes' if some x in [0, 1] satisfies x else 'no'", "yes"),
        ("= if every x in [0, 1] satisfies x then 1 else 2", 2),
        ("len([some x in [1] satisfies true, every x in [1] satisfies false])", 2),
        # the condition is read as a condition: truthiness (JUEL: the string "true")
        ("some x in [0, '', null, 'a'] satisfies x", True),
        ("${some x in ['yes', 'no'] satisfies x}", False),
        # nested quantifiers, and several contexts (the later ones may use the earlier names)
        ("some row in [[1, 2], [3]] satisfies every x in row satisfies x > 2", True),
        ("every row in [[1, 2], [3]] satisfies some x in row satisfies x > 1", True),
        ("every row in [[1, 2], [3]] satisfies some x in row satisfies x > 2", False),
        ("some x in [1, 2], y in [3, 4] satisfies x + y == 6", True),
        ("some x in [1, 2], y in [3, 4] satisfies x + y == 7 and x == 1", False),
        ("every x in [[1], [2, 2]], y in x satisfies y == len(x)", True),
        ("every x in [1, 2], y in [] satisfies false", True),
        # for ... return
        ("for x in [1, 2, 3] return x * 2", [2, 4, 6]),
        ("for x in [] return x", []),
        ("= for x in [1, 2], y in [10, 20] return x * y", [10, 20, 20, 40]),
        ("for row in [[1, 2], [3]] return for x in row return x + 1", [[2, 3], [4]]),
        ("some x in for y in [1, 2] return y * 10 satisfies x == 20", True),
        ("every x in (for y in users return len(y)) satisfies x > 4", True),
    ],
)
def test_feel_loops(text: str, expected: Any) -> None:
    result = value(text)
    assert result == expected
    assert type(result) is type(expected)


def test_loop_names_shadow_variables_in_the_body_only() -> None:
    assert value("some x in [1, 2] satisfies x == 2") is True  # x is 7 outside
    assert value("some x in [x] satisfies x == 7") is True  # the domain sees the outer x
    assert value("(every x in [1] satisfies x == 1) and x == 7") is True  # and so does what follows
    assert value("[for x in ['a'] return x, x]") == [["a"], 7]
    assert value("some x in [[1]] satisfies some x in x satisfies x == 1") is True  # inner shadows outer
    assert value("for x in [[1, 2]], x in x return x") == [1, 2]  # a later context shadows an earlier one
    assert value("for name in ['Bo'] return name + (for n in [1] return name)[0]") == ["BoBo"]  # outer name seen inside
    assert "unknown variable 'k'" in eval_error("[some k in [1] satisfies true, k]")
    assert "unknown variable 'k'" in eval_error("(some k in [1] satisfies true) and k")


def test_feel_loops_with_feel_names() -> None:
    feel = "feel"
    variables = {"risk levels": ["green", "red"], "threshold": "red"}
    some = compile_expression("some level in risk levels satisfies level = threshold", feel)
    every = compile_expression("every level in risk levels satisfies level = threshold", feel)
    each = compile_expression("for l in risk levels return l + threshold", feel)
    assert some.evaluate(variables) is True
    assert every.evaluate(variables) is False
    assert each.evaluate(variables) == ["greenred", "redred"]
    # outside a loop 'some' and 'every' stay plain names
    assert value("= some + every", {"some": 1, "every": 2}) == 3
    assert value("some in every", {"some": 1, "every": [1]}) is True
    assert value("for", {"for": "x"}) == "x"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("some x in users", "expected 'satisfies', found end of expression"),
        ("every x in users return x", "expected 'satisfies', found 'return'"),
        ("for x in users satisfies x", "expected 'return', found 'satisfies'"),
        ("some x in users satisfies", "unexpected end of expression"),
        ("some x in satisfies x", "expected 'satisfies', found 'x'"),  # 'satisfies' is the domain
        ("some x in users, 1 satisfies true", "expected a name after 'some', found number 1"),
        ("some x in users, y satisfies true", "expected 'in', found 'satisfies'"),
        ("some _x in users satisfies true", "'_x'"),
        ("some x in xs, __class__ in ys satisfies true", "'__class__'"),
        ("= some x in [1..3] satisfies x > 1", "expected ']'"),  # no FEEL ranges
    ],
)
def test_feel_loop_syntax_errors(text: str, fragment: str) -> None:
    assert fragment in compile_error(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("some x in 5 satisfies true", "'some' needs a list to iterate over, not a number"),
        ("every x in 'abc' satisfies true", "'every' needs a list to iterate over, not a string"),
        ("for x in RoomObject return x", "'for' needs a list to iterate over, not a map"),
        ("some x in none satisfies true", "not a null"),
        ("some x in [1], y in x satisfies true", "not a number"),
        ("some risk in riskLevels satisfies risk = 'red'", "unknown variable 'riskLevels'"),
        ("every x in [1] satisfies x > missing", "unknown variable 'missing'"),
        ("some x in ['a', 1] satisfies x > 0", "cannot compare a string and a number"),
        ("some x in [RoomObject] satisfies x.missing", "unknown property 'missing'"),
    ],
)
def test_feel_loop_evaluation_errors(text: str, fragment: str) -> None:
    assert fragment in eval_error(text)


def test_feel_loops_stop_as_soon_as_they_are_decided() -> None:
    assert value("some x in [1, 0] satisfies 1 / x == 1") is True  # 1 / 0 never runs
    assert value("every x in [2, 0] satisfies 1 / x == 1") is False
    assert "division by zero" in eval_error("every x in [1, 0] satisfies 1 / x == 1")


@pytest.mark.parametrize("language", [None, "", "juel", "JUEL", "feel", "python", "spiff", "Python"])
def test_supported_languages(language: str | None) -> None:
    assert compile_expression("${input == 1}", language).evaluate_condition(VARS) is True


@pytest.mark.parametrize("language", ["http://www.w3.org/1999/XPath", "javascript", "JavaScript", "groovy", "js"])
def test_unsupported_languages(language: str) -> None:
    assert compile_error("true", language) == f"expression language '{language}' is not supported"


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${initiator}", "kermit"),
        ("user-${id}", "user-42"),
        ("kermit, ${initiator}", "kermit, kermit"),
        ("kermit", "kermit"),
        ("", ""),
        ("${users}", ["kermit", "gonzo"]),
        (" ${id} ", 42),
        ("${5}", 5),
        ("#{id}-${approved}-${none}.", "42-true-."),
        ("cost: \\${id}", "cost: ${id}"),
        ("${'}'}", "}"),
        ("= id + 1", 43),
    ],
)
def test_templates(text: str, expected: Any) -> None:
    assert compile_template(text).evaluate(VARS) == expected


def test_composite_juel_condition_is_a_string() -> None:
    assert compile_expression("${a}-${b}").evaluate(VARS) == "x-z"


def test_template_errors() -> None:
    assert "unterminated" in str(error_of(lambda: compile_template("user-${id")))
    assert "unknown variable 'nope'" in str(error_of(lambda: compile_template("a ${nope}").evaluate({})))


# --------------------------------------------------------------------------- expression objects


def test_expression_is_immutable_hashable_and_keeps_its_source() -> None:
    expression = compile_expression("${input == 1}")
    assert expression.source == "${input == 1}"
    assert expression == compile_expression("${input == 1}")
    assert hash(expression) == hash(compile_expression("${input == 1}"))
    with pytest.raises(AttributeError):
        expression.source = "x"  # type: ignore[misc]


def test_expression_constructor_compiles() -> None:
    assert Expression("${input + 1}").evaluate(VARS) == 2


def test_expression_error_is_the_domain_error() -> None:
    assert ExpressionError is errors.ExpressionError
    assert error_of(lambda: value("nope")).code == "EXPRESSION_ERROR"


def test_shared_across_threads() -> None:
    expression = compile_expression("${n * 2 + 1}")
    results: list[int] = []

    def work(n: int) -> None:
        results.append(expression.evaluate({"n": n}))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [2 * n + 1 for n in range(20)]


def test_list_literals_are_fresh_each_time() -> None:
    expression = compile_expression("[1, 2]")
    first = expression.evaluate({})
    first.append(3)
    assert expression.evaluate({}) == [1, 2]


# --------------------------------------------------------------------------- errors


def test_missing_variable_names_it_and_the_source() -> None:
    assert eval_error("${amount > 10}", {}) == "unknown variable 'amount' in '${amount > 10}'"


def test_missing_property_names_it() -> None:
    assert "unknown property 'tenant'" in eval_error("${RoomObject.tenant}")
    assert "unknown property 'tenant'" in eval_error("${RoomObject['tenant']}")
    assert "index 5 is out of range" in eval_error("${users[5]}")
    assert "cannot read property 'x' of a string" in eval_error("name.x")
    assert "cannot read property 'x' of null" in eval_error("none.x")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os').system('ls')", "'__import__'"),
        ("x.__class__", "'__class__'"),
        ("().__class__.__mro__", "unexpected ')'"),
        ("''.__class__.__mro__[1].__subclasses__()", "'__class__'"),
        ("_private", "'_private'"),
        ("a['__class__']", "'__class__'"),
        ("(len)(x)(1)", "only whitelisted functions"),
        ("len(1, 2)", "wrong number of arguments (2) for 'len'"),
        ("name.size(1)", "wrong number of arguments (1) for 'size'"),
        ("x +", "unexpected end of expression"),
        ("x y", "unexpected 'y'"),
        ("'abc", "unterminated string"),
        ("a ; b", "unexpected character ';'"),
        ("${}", "empty expression"),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("{'a': 1}", "unexpected character '{'"),
        ("1..5", "unexpected number"),
        ("12abc", "invalid number"),
        ("1e999", "out of range"),
        ("1" * 102, "exceeds 10**100"),
        ("a if b", "expected 'else'"),
        ("[1, 2", "expected ']'"),
        ("x.", "unexpected end"),
    ],
)
def test_compile_errors(text: str, fragment: str) -> None:
    assert fragment in compile_error(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${service.call()}", "method 'call' is not allowed"),
        ("${execution.setVariable('x', 1)}", "execution method 'setVariable' is not allowed"),
        ("open('/etc/passwd')", "function 'open' is not allowed"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("exec(missing)", "function 'exec' is not allowed"),
    ],
)
def test_calls_outside_the_whitelist_deploy_but_fail_when_evaluated(text: str, fragment: str) -> None:
    assert fragment in eval_error(text, {})


def test_dynamic_underscore_keys_are_refused() -> None:
    assert "'_secret'" in eval_error("RoomObject[key]", {"RoomObject": {"_secret": 1}, "key": "_secret"})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("10**10**10", "exponent"),
        ("2**2**2**2**2", "exponent"),
        ("10**101", "exceeds 10**100"),
        ("7**200", "would exceed 10**100"),
        ("(-8) ** 0.5", "fractional exponent"),
        ("10.0 ** 400", "overflow"),
        ("1e308 * 10", "not a finite number"),
        ("'a'*10**9", "longer than 100000"),
        ("[1]*10**9", "longer than 100000"),
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("1 % 0.0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("1 < 'a'", "cannot compare a number and a string with '<'"),
        ("null > 1", "cannot compare a null and a number"),
        ("true < 2", "cannot compare a boolean"),
        ("1 + 'a'", "cannot add a number and a string"),
        ("'a' - 'b'", "cannot apply '-'"),
        ("-'a'", "unary '-'"),
        ("'%s' % 1", "cannot apply '%'"),
        ("1 in 'abc'", "cannot look for a number in a string"),
        ("1 in 5", "cannot look for a value in a number"),
        ("len(5)", "a number has no length"),
        ("int('x')", "cannot convert 'x' to a number"),
        ("float('nan')", "not a finite number"),
        ("int(1e300)", "exceeds 10**100"),
        ("round(1.5, 10**9)", "at most 100 digits"),
        ("min([])", "empty list"),
        ("max(1, 'a')", "cannot compare"),
        ("none.size()", "on null"),
        ("x.trim()", "needs a string"),
        ("users[true]", "must be an integer"),
        ("users['a']", "must be an integer"),
        ("x[0]", "cannot index a number"),
        ("RoomObject[[1]]", "cannot be a map key"),
    ],
)
def test_evaluation_errors(text: str, fragment: str) -> None:
    assert fragment in eval_error(text)


def test_deep_nesting_is_refused_quickly() -> None:
    for text in ["(" * 10_000 + "1" + ")" * 10_000, "!" * 4000 + "x", "-" * 4000 + "1", "not " * 1000 + "x"]:
        assert "nests deeper than" in compile_error(text[:MAX_SOURCE_LENGTH])
    assert "nests deeper than" in compile_error("a" + ".b" * (MAX_DEPTH + 1))
    assert "nests deeper than" in compile_error("+".join(["1"] * (MAX_DEPTH + 2)))
    assert compile_expression("+".join(["1"] * MAX_DEPTH)).evaluate({}) == MAX_DEPTH


def test_long_sources_and_many_nodes_are_refused() -> None:
    assert "longer than 4096 characters" in compile_error("x" * 5000)
    assert "longer than 4096" in str(error_of(lambda: compile_template("y" * 5000)))
    many = "[" + ",".join(["1"] * 2040) + "]"
    assert "more than 2000 nodes" in compile_error(many)
    part = "${[" + ",".join(["1"] * 1010) + "]}"
    assert "more than 2000 nodes" in str(error_of(lambda: compile_template(f"a {part} b {part}")))


def test_step_budget_bounds_scans_of_huge_values() -> None:
    big = {"xs": list(range(1_000_001)), "small": list(range(1000))}
    assert "budget" in eval_error("-1 in xs", big)
    assert value("999 in small", big) is True


def test_feel_loops_are_bounded() -> None:
    huge = {"xs": list(range(MAX_SEQUENCE + 1)), "big": list(range(50_000)), "mid": list(range(1000))}
    for text in ("some x in xs satisfies true", "every x in xs satisfies true", "for x in xs return x"):
        assert f"longer than {MAX_SEQUENCE} items" in eval_error(text, huge)  # refused before iterating
    assert "budget" in eval_error("every x in big satisfies true", huge)
    assert "budget" in eval_error("some x in big satisfies false", huge)
    assert "budget" in eval_error("for x in big return x", huge)
    assert "budget" in eval_error("some x in mid, y in mid satisfies false", huge)  # a product is bounded too
    assert "budget" in eval_error("some x in mid satisfies some y in mid satisfies false", huge)
    assert value("some x in big satisfies x == 0", huge) is True  # decided at once
    assert value("every x in mid satisfies x >= 0", huge) is True
    assert len(value("for x in mid return [x]", huge)) == 1000


def test_feel_loop_nesting_is_bounded() -> None:
    nested = "some a in [1] satisfies " * MAX_DEPTH + "true"
    assert "nests deeper than" in compile_error(nested)
    contexts = ", ".join(f"a{i} in [1]" for i in range(MAX_DEPTH)) + " satisfies true"
    assert "nests deeper than" in compile_error("some " + contexts)
    deepest = "some a in [1] satisfies " * (MAX_DEPTH - 2) + "true"
    assert value(deepest) is True
    widest = "every " + ", ".join(f"a{i} in [1, 2]" for i in range(12)) + " satisfies a0 == a0"
    assert "budget" in eval_error(widest)  # 2**12 bindings, each a few steps
    many = "for " + ", ".join(f"a{i} in [1]" for i in range(MAX_DEPTH - 3)) + " return a0"
    assert value(many) == [1]


def test_huge_values_from_variables_fail_cleanly() -> None:
    huge = {"n": 10**5000, "s": "9" * 5000, "deep": _deeply_nested(5000)}
    assert "10**100" in eval_error("n + 1", huge)
    assert "too large" in eval_error("str(n)", huge)
    assert "that long" in eval_error("int(s)", huge)
    assert "overflow" in eval_error("n * 1.5", huge)
    assert "nested deeper than" in eval_error("str(deep)", huge)
    assert "very large integer" in eval_error("[1][n]", huge)


def _deeply_nested(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


def test_non_json_values_are_not_introspected() -> None:
    class Secret:
        password = "hunter2"

    assert "cannot read property 'password' of a Secret" in eval_error("s.password", {"s": Secret()})
    assert "method 'password' is not allowed" in eval_error("s.password()", {"s": Secret()})


def test_variables_must_be_a_mapping() -> None:
    error_of(lambda: compile_expression("x").evaluate([("x", 1)]))  # type: ignore[arg-type]


def test_non_string_sources_are_refused() -> None:
    error_of(lambda: compile_expression(5))  # type: ignore[arg-type]
    error_of(lambda: compile_template(None))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- property tests

_TOKENS = [
    *"abxy", "name", "users", "RoomObject", "order", "_x", "__class__", "empty", "not", "and", "or",
    "in", "is", "if", "else", "then", "div", "mod", "eq", "lt", "true", "False", "null", "None",
    "0", "1", "2", "10", "1.5", ".5", "1e3", "10**100", "'a'", '"b"', "'", "\\", "${", "#{", "}", "=",
    "==", "!=", "<", ">", "<=", ">=", "&&", "||", "!", "?", ":", "+", "-", "*", "/", "//", "%", "**",
    "(", ")", "[", "]", ",", ".", "len", "min(", "max(", "str(", "int(", "round(", "contains(",
    ".size()", ".trim()", ".equals(", ".contains(", "open(", ".call()", "every", " ", "\n", "9" * 120,
    "some", "for", "satisfies", "return", "some x in", "every y in", "for x in", "x in users satisfies",
    "some x in users satisfies", "for a in [1, 2] return", ", y in",
]  # fmt: skip

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**120), max_value=10**120)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=6,
)
_NAMES = st.sampled_from(["a", "b", "x", "y", "name", "users", "RoomObject", "order", "n", "s"])
_VARIABLES = st.dictionaries(_NAMES, _JSON, max_size=8)
_GRAMMARISH = st.lists(st.sampled_from(_TOKENS), max_size=30).map(" ".join) | st.lists(
    st.sampled_from(_TOKENS), max_size=30
).map("".join)
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compile_or_none(text: str, compiler: Callable[[str], Expression]) -> Expression | None:
    try:
        return compiler(text)
    except ExpressionError:
        return None


def _evaluate_safely(expression: Expression, variables: Mapping[str, Any]) -> None:
    for run in (expression.evaluate, expression.evaluate_condition):
        try:
            run(variables)
        except ExpressionError as error:  # the last-resort conversion must never be needed
            assert "evaluation failed" not in str(error), str(error)


@pytest.mark.slow
@_FUZZ
@given(st.text(max_size=60), _VARIABLES)
def test_arbitrary_text_only_raises_expression_error(text: str, variables: dict[str, Any]) -> None:
    for compiler in (compile_expression, compile_template):
        expression = _compile_or_none(text, compiler)
        if expression is not None:
            _evaluate_safely(expression, variables)


@pytest.mark.slow
@_FUZZ
@given(_GRAMMARISH, _VARIABLES, st.sampled_from(["", "${", "= ", "#{"]))
def test_grammar_like_text_only_raises_expression_error(body: str, variables: dict[str, Any], prefix: str) -> None:
    text = prefix + body + ("}" if prefix.endswith("{") else "")
    for compiler in (compile_expression, compile_template):
        expression = _compile_or_none(text, compiler)
        if expression is not None:
            _evaluate_safely(expression, variables)


_OPERATORS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "<", ">=", "in", "and", "or"])


@st.composite
def _well_formed(draw: st.DrawFn, depth: int = 0) -> str:
    """Syntactically valid expressions, so the evaluator (not the parser) is exercised."""
    if depth > 3 or draw(st.booleans()):
        return draw(_NAMES | st.sampled_from(["1", "0", "2.5", "'ab'", "true", "null", "[1, 'a']", "-3", "10**50"]))
    left = draw(_well_formed(depth + 1))
    right = draw(_well_formed(depth + 1))
    form = draw(st.integers(0, 6))
    if form == 0:
        return f"({left} {draw(_OPERATORS)} {right})"
    if form == 1:
        return f"{left}[{right}]"
    if form == 2:
        return f"(not {left})"
    if form == 3:
        return f"({left} ? {right} : {left})"
    if form == 4:
        return f"{draw(st.sampled_from(['min', 'max', 'round', 'contains']))}({left}, {right})"
    if form == 6:
        name = draw(_NAMES)
        loop = draw(st.sampled_from(["some", "every", "for"]))
        return f"({loop} {name} in {left} {'return' if loop == 'for' else 'satisfies'} {right})"
    return f"({left}).{draw(st.sampled_from(['size()', 'trim()', 'owner', 'contains(' + right + ')']))}"


@pytest.mark.slow
@_FUZZ
@given(_well_formed(), _VARIABLES)
def test_well_formed_expressions_only_raise_expression_error(text: str, variables: dict[str, Any]) -> None:
    expression = compile_expression(text)
    _evaluate_safely(expression, variables)
    _evaluate_safely(compile_template("${" + text + "}"), variables)


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_arithmetic_matches_python_on_small_integers(left: int, right: int) -> None:
    variables = {"a": left, "b": right}
    assert value("a + b * 2 - a", variables) == left + right * 2 - left
    assert value("a < b", variables) is (left < right)
    assert value("a == b", variables) is (left == right)
    if right:
        assert value("a // b", variables) == left // right
        assert value("a % b", variables) == left % right


_EXPRESSION_TEXT = st.from_regex(r"\$\{[ abnsxy0-9_.,()\[\]'<>=!&|?:+*/%-]{1,48}\}", fullmatch=True) | st.from_regex(
    r"= ?[ abnsxy0-9_.,()\[\]'\"<>=!+*/-]{1,40}", fullmatch=True
)


def _is_json_like(result: Any) -> bool:
    """What an evaluation may return: JSON-like values only, never a Python object of its own."""
    if result is None or isinstance(result, bool | int | float | str):
        return True
    if isinstance(result, list | tuple):
        return all(_is_json_like(item) for item in result)
    if isinstance(result, dict):
        return all(isinstance(k, str | int | float) and _is_json_like(v) for k, v in result.items())
    return False


@pytest.mark.slow
@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_EXPRESSION_TEXT, _VARIABLES)
def test_regex_generated_expressions_return_a_value_or_raise_their_own_error(
    text: str, variables: dict[str, Any]
) -> None:
    meter = WorkMeter()
    try:
        result = compile_expression(text).evaluate(variables, meter=meter)
    except ExpressionError as error:
        assert "evaluation failed" not in str(error), str(error)
    else:
        assert _is_json_like(result), (text, type(result))
    assert meter.used <= MAX_WORK, text
