// Sends the SAML AuthnRequest form to DigiD at once; without JavaScript the visible button does it.
document.querySelectorAll("form[data-autosubmit]").forEach(function (form) { form.submit(); });
