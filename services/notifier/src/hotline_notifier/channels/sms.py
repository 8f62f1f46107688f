"""SMS through Twilio's Messages API, and through eSMS.vn as the second provider."""

from __future__ import annotations

from ..http_client import ProviderHttp
from ..phones import e164
from .base import HttpChannel, OutboundMessage, SendError, SendResult


class TwilioSms(HttpChannel):
    """`POST /2010-04-01/Accounts/{sid}/Messages.json`, Basic auth, form fields → 201 + SM sid."""

    name = "sms"
    provider = "twilio"
    max_text = 1600

    def __init__(
        self,
        http: ProviderHttp,
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        messaging_service_sid: str | None = None,
    ) -> None:
        super().__init__(http)
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.auth = (account_sid, auth_token)
        self.sender = sender
        self.messaging_service_sid = messaging_service_sid

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        form = {"To": e164(address), "Body": self.clip(message.text)}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.sender
        response = await self.request("POST", self.url, data=form, auth=self.auth)
        if response.status_code not in (200, 201):
            # The status decides (429/408/5xx were raised as transient above); the body, JSON
            # or not (a proxy's HTML page), only describes the refusal.
            error = self.json_or_none(response)
            raise self.refuse(
                response, f"{error.get('code')} {error.get('message')}" if error else None
            )
        body = self.json(response)
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid.startswith("SM"):
            raise SendError("twilio: answer has no message sid", transient=True)
        return SendResult(self.provider, sid)


# eSMS answers HTTP 200 with a CodeResult; "100" is success. "99" is an unknown error on their
# side (worth retrying); the others (bad key, no balance, bad brandname...) are permanent.
ESMS_TRANSIENT = {"99"}


class EsmsSms(HttpChannel):
    """eSMS.vn `SendMultipleMessage_V4_post_json` with ApiKey/SecretKey in the JSON body."""

    name = "sms"
    provider = "esms"
    max_text = 1600

    def __init__(
        self,
        http: ProviderHttp,
        *,
        base_url: str,
        api_key: str,
        secret_key: str,
        brandname: str,
        sms_type: str,
    ) -> None:
        super().__init__(http)
        self.url = f"{base_url.rstrip('/')}/MainService.svc/json/SendMultipleMessage_V4_post_json/"
        self.api_key = api_key
        self.secret_key = secret_key
        self.brandname = brandname
        self.sms_type = sms_type

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        payload = {
            "ApiKey": self.api_key,
            "SecretKey": self.secret_key,
            "Phone": "0" + e164(address)[3:]
            if e164(address).startswith("+84")
            else e164(address)[1:],
            "Content": self.clip(message.text),
            "SmsType": self.sms_type,
            "Brandname": self.brandname,
            "IsUnicode": "1",
            "Sandbox": "0",
            "RequestId": message.delivery_id,
        }
        response = await self.request("POST", self.url, json=payload)
        if response.status_code >= 400:
            raise self.refuse(response, response.text)
        body = self.json(response)
        code = str(body.get("CodeResult", ""))
        if code != "100":
            raise SendError(
                f"esms: CodeResult {code}: {str(body.get('ErrorMessage', ''))[:200]}",
                transient=code in ESMS_TRANSIENT,
            )
        return SendResult(self.provider, str(body.get("SMSID", "")))
