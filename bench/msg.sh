#!/usr/bin/env bash
# msg.sh -- the "realistic" message shape of bench/run milters: a list mail
# with 27 header fields (a Received chain, Authentication-Results, a
# DKIM-Signature, List-*, MIME fields, Message-ID ...) and a text body,
# CRLF, about SIZE bytes in all.  "@@ID@@" in the Message-ID is replaced per
# message by bench/pl-smtp-load, so every message has its own.
# usage: bench/msg.sh SIZE FROM TO >FILE
set -eu
size=$1 from=$2 to=$3
dom=${from#*@}
{
cat <<HDR
Received: from mx2.lists.example.org (mx2.lists.example.org [192.0.2.25])
	by mail.relay.example.net (Postfix) with ESMTPS id 4Xyz1a2B3cD
	for <$to>; Tue, 01 Dec 2026 10:15:02 +0000 (UTC)
Received: from list-processor.lists.example.org (localhost [127.0.0.1])
	by mx2.lists.example.org (Postfix) with ESMTP id 9F2E13C0AB
	for <$to>; Tue, 01 Dec 2026 10:15:01 +0000 (UTC)
Received: from [198.51.100.7] (dyn-7.isp.example [198.51.100.7])
	(Authenticated sender: list-author)
	by smtp.$dom (Postfix) with ESMTPSA id 1A2B3C4D5E
	for <dev@lists.example.org>; Tue, 01 Dec 2026 10:14:58 +0000 (UTC)
Authentication-Results: mail.relay.example.net; dkim=pass header.d=$dom;
	spf=pass smtp.mailfrom=$from; dmarc=pass header.from=$dom
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=$dom; s=sel2026;
	t=1796120098; h=from:to:subject:date:message-id:list-id:mime-version;
	bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
	b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSwganVzdCBpdHMgc2l6ZSBhbmQgc2hh
	 cGUgZm9yIHRoZSBwb3N0bGluayBtaWx0ZXIgYmVuY2htYXJrIG1lc3NhZ2UgYmVuY2htYXJr
	 IG1lc3NhZ2UgYmVuY2htYXJrIG1lc3NhZ2UgYmVuY2htYXJrIG1lc3NhZ2UgYmVuY2g=
From: List Author <$from>
To: Developers <$to>
Reply-To: dev@lists.example.org
Subject: [dev] Re: release planning for the next version
Date: Tue, 01 Dec 2026 10:14:57 +0000
Message-ID: <bench.@@ID@@@$dom>
In-Reply-To: <previous.1234@$dom>
References: <first.1111@$dom> <previous.1234@$dom>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"; format=flowed
Content-Transfer-Encoding: 8bit
List-Id: Developers <dev.lists.example.org>
List-Unsubscribe: <mailto:dev-leave@lists.example.org>, <https://lists.example.org/u/dev>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
List-Archive: <https://lists.example.org/archive/dev>
List-Post: <mailto:dev@lists.example.org>
List-Help: <mailto:dev-request@lists.example.org?subject=help>
List-Subscribe: <mailto:dev-join@lists.example.org>
Precedence: list
X-Mailer: bench-mailer 1.0
Feedback-ID: dev:lists.example.org

HDR
line="The release is planned for the second week; please test the candidate builds and report"
n=0
while [ "$n" -lt "$size" ]; do
    printf '%s %d\n' "$line" "$n"
    n=$((n + ${#line} + 8))
done
} | awk -v size="$size" '{ printf "%s\r\n", $0; t += length($0) + 2; if (t >= size && body) exit } /^$/ { body = 1 }'
