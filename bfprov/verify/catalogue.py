"""Every loginStatus of Betfair's documentation: what it means and what to do."""

from __future__ import annotations

# loginStatus -> (what it means, what the operator should do). From Betfair's
# documentation of non-interactive login; `{crt}` and `{upload_url}` are filled in.
CATALOGUE: dict[str, tuple[str, str]] = {
    "SUCCESS": ("logged in", "nothing"),
    "CERT_AUTH_REQUIRED": (
        "certificate required, or present but Betfair could not authenticate with it",
        "upload {crt} at {upload_url} (Automated Betting Program Access -> Edit), then verify",
    ),
    "INVALID_USERNAME_OR_PASSWORD": (
        "the username or password is invalid",
        "check the account's username and password secret; do not retry blindly: "
        "repeated failures lock the account",
    ),
    "ACCOUNT_NOW_LOCKED": (
        "the account was just locked after repeated failed logins",
        "unlock it on the Betfair website or with Betfair support, then fix the password secret",
    ),
    "ACCOUNT_ALREADY_LOCKED": (
        "the account is already locked",
        "unlock it on the Betfair website or with Betfair support",
    ),
    "PENDING_AUTH": (
        "pending authentication",
        "complete the authentication on the Betfair website",
    ),
    "TELBET_TERMS_CONDITIONS_NA": (
        "Telbet terms and conditions rejected",
        "log in on the website and accept the terms",
    ),
    "DUPLICATE_CARDS": ("duplicate cards", "contact Betfair support"),
    "SECURITY_QUESTION_WRONG_3X": (
        "the security question was answered wrongly 3 times",
        "contact Betfair support",
    ),
    "KYC_SUSPEND": ("suspended for identity checks (KYC)", "complete the checks with Betfair"),
    "SUSPENDED": ("the account is suspended", "contact Betfair support"),
    "CLOSED": ("the account is closed", "remove it from the profiles or contact Betfair"),
    "SELF_EXCLUDED": ("the account has been self-excluded", "none while the exclusion lasts"),
    "INVALID_CONNECTIVITY_TO_REGULATOR_DK": (
        "the Danish regulator cannot be reached",
        "retry later; Danish residents cannot use bot login anyway",
    ),
    "NOT_AUTHORIZED_BY_REGULATOR_DK": (
        "not authorised by the Danish regulator",
        "Danish residents cannot use bot login",
    ),
    "INVALID_CONNECTIVITY_TO_REGULATOR_IT": (
        "the Italian regulator cannot be reached (internal problem or timeout)",
        "retry later",
    ),
    "NOT_AUTHORIZED_BY_REGULATOR_IT": (
        "not authorised by the Italian regulator to act in the Italian jurisdiction",
        "check the account's jurisdiction and status with Betfair Italia",
    ),
    "SECURITY_RESTRICTED_LOCATION": (
        "the account is restricted due to security concerns",
        "contact Betfair support",
    ),
    "BETTING_RESTRICTED_LOCATION": (
        "the account is accessed from a location where betting is restricted",
        "log in from an allowed location (check the host's egress IP)",
    ),
    "TRADING_MASTER": ("a Trading Master account", "use the sub-account for bot login"),
    "TRADING_MASTER_SUSPENDED": ("a suspended Trading Master account", "contact Betfair support"),
    "AGENT_CLIENT_MASTER": ("an Agent Client Master account", "use the client account"),
    "AGENT_CLIENT_MASTER_SUSPENDED": (
        "a suspended Agent Client Master account",
        "contact Betfair support",
    ),
    "DANISH_AUTHORIZATION_REQUIRED": (
        "Danish authorisation required",
        "Danish residents cannot use bot login",
    ),
    "SPAIN_MIGRATION_REQUIRED": ("Spain migration required", "log in on betfair.es to migrate"),
    "DENMARK_MIGRATION_REQUIRED": (
        "Denmark migration required",
        "Danish residents cannot use bot login",
    ),
    "SPANISH_TERMS_ACCEPTANCE_REQUIRED": (
        "the latest Spanish terms and conditions must be accepted",
        "log in on the website and accept the new conditions",
    ),
    "ITALIAN_CONTRACT_ACCEPTANCE_REQUIRED": (
        "the latest Italian contract must be accepted",
        "log in on the website and accept the new contract",
    ),
    "CHANGE_PASSWORD_REQUIRED": (
        "a password change is required",
        "change the password on the website, then update the password secret",
    ),
    "PERSONAL_MESSAGE_REQUIRED": (
        "a personal message for the user is waiting",
        "log in on the website and read it",
    ),
    "INTERNATIONAL_TERMS_ACCEPTANCE_REQUIRED": (
        "the latest international terms and conditions must be accepted",
        "log in on the website and accept them",
    ),
    "EMAIL_LOGIN_NOT_ALLOWED": (
        "this account has not opted in to log in with its email address",
        "use the username, not the email address, in the profile",
    ),
    "MULTIPLE_USERS_WITH_SAME_CREDENTIAL": (
        "more than one account has the same credential",
        "log in with the username rather than the email address",
    ),
    "ACCOUNT_PENDING_PASSWORD_CHANGE": (
        "the account must undergo password recovery to reactivate",
        "recover the password on the website, then update the password secret",
    ),
    "TEMPORARY_BAN_TOO_MANY_REQUESTS": (
        "more than 100 successful logins a minute: new logins are banned for 20 minutes",
        "wait 20 minutes; bots should reuse sessions (keepAlive) instead of logging in again",
    ),
    "ITALIAN_PROFILING_ACCEPTANCE_REQUIRED": (
        "Italian profiling conditions must be accepted",
        "log in on the website and accept the new conditions",
    ),
    "AUTHORIZED_ONLY_FOR_DOMAIN_RO": (
        "this is not a .ro account, but the login went to the Romanian domain",
        "set the account's jurisdiction to the one it belongs to",
    ),
    "AUTHORIZED_ONLY_FOR_DOMAIN_SE": (
        "this is not a .se account, but the login went to the Swedish domain",
        "set the account's jurisdiction to the one it belongs to",
    ),
    "SWEDEN_NATIONAL_IDENTIFIER_REQUIRED": (
        "a Swedish national identifier is required",
        "provide it on betfair.se",
    ),
    "SWEDEN_BANK_ID_VERIFICATION_REQUIRED": (
        "Swedish BankID verification is required",
        "verify with BankID on betfair.se",
    ),
    "ACTIONS_REQUIRED": (
        "information is missing on the account",
        "log in on the website to provide it",
    ),
    "INPUT_VALIDATION_ERROR": (
        "the request (headers or body) was not valid",
        "check the app key and username; if they are right, report this as a bfprov bug",
    ),
}


def explain(status: str, *, crt: str = "the .crt", upload_url: str = "") -> tuple[str, str]:
    """(meaning, remedy) for a loginStatus; unknown codes are reported as they come."""
    if status not in CATALOGUE:
        return (f"unknown loginStatus {status}", "see Betfair's documentation for this code")
    meaning, remedy = CATALOGUE[status]
    return meaning, remedy.format(crt=crt, upload_url=upload_url or "Betfair's website")
