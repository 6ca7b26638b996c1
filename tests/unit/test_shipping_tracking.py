import pytest

from shared.contracts.trade import Carrier
from shared.domain.errors import InvalidRequest

from services.shipping.tracking import (
    normalise,
    s10_check_digit,
    ups_check_digit,
    validated_tracking_number,
)

# Check digits worked by hand:
# S10 "12345678": 1*8+2*6+3*4+4*2+5*3+6*5+7*9+8*7 = 204; 204 % 11 = 6; 11 - 6 = 5.
# S10 "47312482": 32+42+12+2+6+20+72+14 = 200; 200 % 11 = 2; 11 - 2 = 9.
# S10 "00000000": sum 0; 11 - 0 = 11 -> 5.
# S10 "00060000": 6*2 = 12; 12 % 11 = 1; 11 - 1 = 10 -> 0.
# UPS "999AA1012345678" (A=2): odd positions 9+9+2+0+2+4+6+8 = 40, even positions
#   9+2+1+1+3+5+7 = 28, doubled 56; 96 -> check 4.
# UPS "12345E020527168" (E=6): odd 1+3+5+0+0+2+1+8 = 20, even 2+4+6+2+5+7+6 = 32 -> 64;
#   84 -> check 6 (UPS's documentation sample ends in 8 and is known not to check out).

VALID = [
    (Carrier.DHL, "1234567890"),
    (Carrier.DHL, "00 3404 3413 "),
    (Carrier.FEDEX, "449044304137821"),
    (Carrier.FEDEX, "7946 8562 6220"),
    (Carrier.UPS, "1Z999AA10123456784"),
    (Carrier.UPS, "1z 12345e 02 0527168 6"),
    (Carrier.USPS, "94001118992231234567"),
    (Carrier.USPS, "9261290100130736401234"),
    (Carrier.USPS, "EA123456789US"),
    (Carrier.SF_EXPRESS, "SF1234567890123"),
    (Carrier.SF_EXPRESS, "sf123456789012"),
    (Carrier.EMS, "EE123456785CN"),
    (Carrier.EMS, "rr 473 124 829 gb"),
    (Carrier.EMS, "EE000000005CN"),
    (Carrier.EMS, "EE000600000CN"),
]

INVALID = [
    (Carrier.DHL, "123456789"),  # 9 digits
    (Carrier.DHL, "12345678901"),
    (Carrier.DHL, "JD0146000012"),
    (Carrier.FEDEX, "1234567890123"),  # 13 digits
    (Carrier.FEDEX, "12345678901A"),
    (Carrier.UPS, "1Z999AA10123456785"),  # wrong check digit
    (Carrier.UPS, "1Z12345E0205271688"),
    (Carrier.UPS, "1Z999AA1012345678"),  # 17 characters
    (Carrier.UPS, "1Z999AA1AB23456784"),  # letters in the service code
    (Carrier.UPS, "2Z999AA10123456784"),
    (Carrier.USPS, "9400111899223123456"),  # 19 digits
    (Carrier.USPS, "94001118992231234567890"),  # 23 digits
    (Carrier.USPS, "EA123456789CN"),
    (Carrier.SF_EXPRESS, "SF12345678901"),  # 11 digits
    (Carrier.SF_EXPRESS, "1234567890123"),
    (Carrier.EMS, "EE123456784CN"),  # wrong check digit
    (Carrier.EMS, "EE000000000CN"),
    (Carrier.EMS, "EE12345678CN"),
    (Carrier.EMS, "E1123456785CN"),
    (Carrier.EMS, "1234567890"),
]


@pytest.mark.parametrize(("carrier", "number"), VALID)
def test_valid_numbers_are_accepted_normalised(carrier, number):
    accepted = validated_tracking_number(carrier, number)
    assert accepted == "".join(number.split()).upper()
    assert " " not in accepted


@pytest.mark.parametrize(("carrier", "number"), INVALID)
def test_invalid_numbers_are_refused_with_the_expected_format(carrier, number):
    with pytest.raises(InvalidRequest) as refused:
        validated_tracking_number(carrier, number)
    assert refused.value.field == "tracking_number"
    assert "expected" in refused.value.detail and str(carrier) in refused.value.detail


def test_a_number_valid_for_one_carrier_is_refused_for_another():
    validated_tracking_number(Carrier.EMS, "EE123456785CN")
    with pytest.raises(InvalidRequest, match="2 letters, 9 digits and US"):
        validated_tracking_number(Carrier.USPS, "EE123456785CN")


def test_normalise_drops_whitespace_and_upper_cases():
    assert normalise(" 1z 999\taa1 0123456784\n") == "1Z999AA10123456784"


@pytest.mark.parametrize(("serial", "check"), [
    ("12345678", 5), ("47312482", 9), ("00000000", 5), ("00060000", 0)])
def test_s10_check_digit(serial, check):
    assert s10_check_digit(serial) == check


@pytest.mark.parametrize(("body", "check"), [("999AA1012345678", 4), ("12345E020527168", 6)])
def test_ups_check_digit(body, check):
    assert ups_check_digit(body) == check
