// wpt-server.js -- runs web-push-testing's mock push service (the npm
// package, pinned in package-lock.json) on 127.0.0.1 only, for
// tests/integration/t_webpush.sh.  The package's own launcher listens on
// every interface of a fixed port and keeps a state file in the working
// directory; this one takes a port (0 = any free one), binds loopback,
// makes the endpoints it hands out say 127.0.0.1 and prints
// "listening PORT" once it accepts connections; it also logs each push
// message's headers (below).
'use strict';
const Server = require('web-push-testing/src/server.js');
const {PushApiModel} = require('web-push-testing/src/PushApiModel.js');

const want = Number(process.argv[2] || 0);
const model = new PushApiModel();
const server = new Server(model, want);
const http = server._app.listen(want, '127.0.0.1', () => {
	const {port} = http.address();
	model.notifyUrl = 'http://127.0.0.1:' + port + '/notify/';
	console.log('listening ' + port);
});
http.on('error', err => {
	console.error(err);
	process.exit(1);
});
server._server = http;
// The package neither checks nor keeps a message's RFC 8030 headers: each
// POST /notify/HASH is logged once answered, as
// "notify HASH STATUS ms=TIME ttl=.. topic=.. urgency=..", for
// t_push_webpush.sh ("-" for a header that was not sent).
server._app.use((req, res, next) => {
	if (req.method === 'POST' && req.path.startsWith('/notify/')) {
		const hash = req.path.slice('/notify/'.length);
		const h = name => req.get(name) || '-';
		res.on('finish', () => console.log('notify ' + hash + ' ' + res.statusCode + ' ms=' +
			Date.now() + ' ttl=' + h('TTL') + ' topic=' + h('Topic') + ' urgency=' + h('Urgency')));
	}
	next();
});
server.setRequestHandlers();
