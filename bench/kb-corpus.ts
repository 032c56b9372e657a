/**
 * A generated legal Q&A knowledge base and the questions users might ask of it, for benchmarks
 * that need a corpus of any size (the sample CSV holds a few dozen entries). Deterministic: the
 * same n and seed give the same entries and questions (pure-rand's xoroshiro128+).
 *
 * Entries look like lawzhidao's: a title that is a short question (劳动合同到期公司不续签有补偿吗),
 * a question of one to three sentences with the asker's circumstances, and a reply of a few
 * sentences citing a law and suggesting a remedy. The vocabulary spans ten topics (labour, lease,
 * divorce, inheritance, loans, traffic accidents, consumer rights, property purchase, property
 * management, fraud), several hundred legal words in all, plus the common words of any question
 * (怎么办, 可以, 吗), so common-word handling and score spreads resemble the real data.
 */
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { KnowledgeEntry } from '../src/shared/knowledge-entry.js';

type Rng = ReturnType<typeof xoroshiro128plus>;

interface Topic {
  /** Who the asker deals with; `{p}` in the phrases below. */
  parties: string[];
  /** The core of a title: the situation, in the asker's words. */
  situations: string[];
  /** How a title ends: the question about the situation. */
  endings: string[];
  /** Circumstances for the question text (`{n}` a count, `{money}` an amount, `{when}` a time). */
  details: string[];
  laws: string[];
  /** What the law says, for replies. */
  rules: string[];
  /** What the asker can do, for replies. */
  remedies: string[];
  evidence: string[];
}

const TOPICS: Topic[] = [
  {
    parties: ['公司', '单位', '老板', '用人单位', '工厂', '包工头'],
    situations: [
      '劳动合同到期{p}不续签', '{p}拖欠工资', '{p}不签劳动合同', '试用期被{p}辞退', '{p}单方面调岗降薪', '{p}不给缴社保',
      '上班路上出车祸算工伤', '{p}不批年假', '加班费{p}不给', '{p}违法解除劳动合同', '怀孕期间被{p}辞退', '竞业限制{p}不给补偿',
      '{p}扣押身份证', '离职后{p}不开离职证明', '{p}拖欠年终奖', '工伤认定{p}不配合', '劳务派遣员工被退回', '{p}要求签自愿放弃社保协议',
      '病假期间{p}停发工资', '{p}强制加班', '{p}以末位淘汰辞退', '实习期间受伤{p}不管', '{p}搬迁到外地', '{p}克扣绩效工资',
    ],
    endings: ['有补偿吗', '怎么办', '合法吗', '可以申请劳动仲裁吗', '能要求双倍工资吗', '经济补偿怎么算', '该怎么维权', '违法吗'],
    details: [
      '我在{p}干了{n}年', '入职{n}个月了', '{p}已经{n}个月没发工资了', '{when}{p}突然通知我', '每个月工资{money}',
      '合同下个月到期', '{p}说是我自己要走的', '我手里有工资条和考勤记录', '{p}一直拖着不处理', '我没有签任何文件',
    ],
    laws: ['劳动合同法', '劳动法', '工伤保险条例', '社会保险法', '劳动争议调解仲裁法'],
    rules: [
      '用人单位应当按月足额支付劳动报酬', '劳动合同期满用人单位不续订的应当支付经济补偿', '经济补偿按劳动者在本单位工作的年限每满一年支付一个月工资',
      '用人单位自用工之日起超过一个月不满一年未订立书面劳动合同的应当每月支付二倍工资', '用人单位违法解除劳动合同的应当按经济补偿标准的二倍支付赔偿金',
      '职工在上下班途中受到非本人主要责任的交通事故伤害的应当认定为工伤', '女职工在孕期产期哺乳期的用人单位不得依照相关规定解除劳动合同',
      '用人单位应当依法为劳动者缴纳社会保险费', '劳动争议申请仲裁的时效期间为一年',
    ],
    remedies: ['向劳动争议仲裁委员会申请仲裁', '向劳动保障监察大队投诉', '向人社局申请工伤认定', '与用人单位协商解决', '向人民法院提起诉讼'],
    evidence: ['劳动合同', '工资条', '银行流水', '考勤记录', '工作群聊天记录', '工牌'],
  },
  {
    parties: ['房东', '中介', '二房东', '租客', '房主', '物业'],
    situations: [
      '{p}不退押金', '租房合同没到期{p}要收房', '{p}突然涨房租', '{p}不修漏水', '租客拖欠房租{p}能换锁吗', '{p}隐瞒凶宅',
      '提前退租{p}要扣违约金', '{p}把房子卖了租约还有效吗', '{p}私自进入出租屋', '群租房被{p}清退', '中介费{p}不退', '甲醛超标{p}不管',
      '转租需要{p}同意吗', '{p}断水断电', '房屋损坏{p}要求赔偿', '{p}不给开租房发票',
    ],
    endings: ['怎么办', '合法吗', '能要回来吗', '可以起诉吗', '违约金怎么算', '该怎么处理', '需要承担什么责任', '租客有什么权利'],
    details: [
      '我租了{n}年的房子', '押金交了{money}', '合同还有{n}个月到期', '{when}{p}打电话说', '房租每月{money}',
      '当时签了书面租赁合同', '{p}说墙面脏了要扣钱', '入住时拍了照片', '{p}一直不接电话',
    ],
    laws: ['民法典', '商品房屋租赁管理办法', '城市房地产管理法'],
    rules: [
      '租赁期限内出租人不得擅自收回房屋', '租赁物在承租人按照租赁合同占有期限内发生所有权变动的不影响租赁合同的效力',
      '出租人应当履行租赁物的维修义务', '承租人经出租人同意可以将租赁物转租给第三人', '押金在租赁关系结束且无欠费和损坏时应当退还',
      '出租人未通知承租人擅自进入出租屋的可能侵犯承租人的居住权',
    ],
    remedies: ['与房东协商退还押金', '向住建部门投诉', '向消费者协会投诉中介', '向人民法院起诉要求退还押金', '报警处理'],
    evidence: ['租赁合同', '押金收据', '转账记录', '入住时的照片', '聊天记录'],
  },
  {
    parties: ['老公', '妻子', '丈夫', '老婆', '对方', '前夫', '前妻'],
    situations: [
      '{p}出轨离婚', '{p}不同意离婚', '离婚后孩子抚养权归谁', '{p}家暴', '婚前房产离婚怎么分', '{p}隐瞒债务',
      '彩礼离婚能要回来吗', '{p}转移夫妻共同财产', '离婚后{p}不给抚养费', '{p}不让探望孩子', '分居两年自动离婚吗', '婚内借款{p}不还',
      '协议离婚后反悔', '{p}赌博欠债要我还吗', '起诉离婚需要多久', '{p}婚后父母出资买房',
    ],
    endings: ['怎么办', '怎么分', '可以起诉离婚吗', '归谁', '需要什么证据', '法院怎么判', '能要回来吗', '有什么后果'],
    details: [
      '我们结婚{n}年了', '有一个{n}岁的孩子', '{p}已经搬出去住了{n}个月', '{when}发现{p}', '婚后买了一套房子',
      '房贷还有{money}没还', '{p}每月收入{money}', '我们没有签婚前协议', '{p}一直拖着不办手续',
    ],
    laws: ['民法典', '反家庭暴力法', '妇女权益保障法'],
    rules: [
      '夫妻在婚姻关系存续期间所得的工资奖金为夫妻的共同财产', '离婚时夫妻共同财产由双方协议处理协议不成的由人民法院判决',
      '不满两周岁的子女以由母亲直接抚养为原则', '因感情不和分居满二年的应当准予离婚', '离婚后不直接抚养子女的父或者母有探望子女的权利',
      '夫妻一方隐藏转移夫妻共同财产的离婚分割时可以少分或者不分', '双方未办理结婚登记手续的当事人请求返还彩礼的人民法院应当予以支持',
    ],
    remedies: ['向人民法院提起离婚诉讼', '申请人身安全保护令', '向妇联求助', '申请财产保全', '与对方协议离婚'],
    evidence: ['结婚证', '聊天记录', '转账记录', '报警记录', '验伤报告', '房产证'],
  },
  {
    parties: ['父亲', '母亲', '爷爷', '奶奶', '哥哥', '姐姐', '叔叔'],
    situations: [
      '{p}去世没有遗嘱遗产', '{p}的遗嘱有效吗', '出嫁的女儿能继承{p}的房产吗', '{p}生前欠债子女要还吗', '继子女能继承{p}遗产吗',
      '{p}的存款怎么取出来', '{p}去世后房子过户', '放弃继承权', '{p}留下的宅基地', '口头遗嘱', '{p}的抚恤金归谁', '遗产分割不均',
      '代位继承', '{p}把房子赠与了外人',
    ],
    endings: ['谁继承', '怎么分', '有效吗', '需要什么手续', '怎么办', '要交税吗', '能起诉吗', '法律怎么规定'],
    details: [
      '{p}{when}去世了', '{p}名下有一套房子', '家里有兄弟姐妹{n}个', '{p}银行里有{money}存款', '{p}生前说过房子给我',
      '遗嘱是{p}自己手写的', '其他继承人不同意', '公证处说要全部继承人到场',
    ],
    laws: ['民法典', '公证法'],
    rules: [
      '遗产按照法定继承办理第一顺序继承人为配偶子女父母', '同一顺序继承人继承遗产的份额一般应当均等', '自书遗嘱由遗嘱人亲笔书写签名注明年月日',
      '继承人以所得遗产实际价值为限清偿被继承人依法应当缴纳的税款和债务', '继承开始后继承人放弃继承的应当在遗产处理前以书面形式作出放弃继承的表示',
      '被继承人的子女先于被继承人死亡的由被继承人的子女的直系晚辈血亲代位继承',
    ],
    remedies: ['到公证处办理继承公证', '向人民法院提起继承诉讼', '与其他继承人协商分割', '申请遗产管理人'],
    evidence: ['死亡证明', '亲属关系证明', '遗嘱原件', '房产证', '户口本'],
  },
  {
    parties: ['朋友', '同事', '亲戚', '借款人', '网贷平台', '同学', '老乡'],
    situations: [
      '{p}借钱不还', '{p}借钱没写借条', '{p}借钱后失联', '民间借贷利息过高', '{p}催收骚扰', '担保人要替{p}还钱吗',
      '借条过了诉讼时效', '{p}微信转账借钱', '高利贷{p}暴力催收', '{p}借钱不还还拉黑我', '欠条和借条的区别', '{p}借钱给别人赌博',
      '{p}只还了一部分', '网贷逾期会坐牢吗',
    ],
    endings: ['怎么办', '能起诉吗', '怎么要回来', '合法吗', '利息怎么算', '需要什么证据', '会被起诉吗', '有效吗'],
    details: [
      '{p}{when}向我借了{money}', '约好{n}个月后还', '是通过微信转账的', '有聊天记录但没有借条', '{p}现在电话不接',
      '当时约定月息{n}分', '{p}说没钱还', '借款已经过去{n}年了',
    ],
    laws: ['民法典', '最高人民法院关于审理民间借贷案件适用法律若干问题的规定', '刑法'],
    rules: [
      '借款合同对支付利息没有约定的视为没有利息', '出借人请求借款人按照合同约定利率支付利息的人民法院应予支持但是超过合同成立时一年期贷款市场报价利率四倍的除外',
      '向人民法院请求保护民事权利的诉讼时效期间为三年', '保证人在保证范围内承担保证责任', '以非法手段催收高利放贷等产生的债务情节严重的构成犯罪',
    ],
    remedies: ['向人民法院提起民事诉讼', '申请支付令', '报警处理', '向银保监会投诉', '申请财产保全'],
    evidence: ['借条', '转账记录', '聊天记录', '通话录音', '证人证言'],
  },
  {
    parties: ['对方司机', '肇事司机', '保险公司', '出租车司机', '外卖骑手', '网约车司机'],
    situations: [
      '交通事故{p}逃逸', '交通事故{p}不赔钱', '{p}拒绝理赔', '电动车撞人', '交通事故误工费', '{p}全责医药费',
      '酒驾撞车', '交通事故伤残鉴定', '追尾事故责任', '行人闯红灯被撞', '交通事故私了后反悔', '{p}没买交强险',
      '车辆贬值损失', '交通事故精神损害赔偿',
    ],
    endings: ['怎么赔偿', '谁负责', '怎么办', '要坐牢吗', '赔偿标准是什么', '怎么处理', '能索赔吗', '需要承担什么责任'],
    details: [
      '{when}在路口被{p}撞了', '交警认定{p}全责', '住院花了{money}', '休养了{n}个月没上班', '{p}说没钱',
      '我骑的是电动车', '当时有行车记录仪', '{p}一直不接电话', '伤残鉴定为{n}级',
    ],
    laws: ['道路交通安全法', '民法典', '机动车交通事故责任强制保险条例', '刑法'],
    rules: [
      '机动车发生交通事故造成人身伤亡财产损失的由保险公司在机动车第三者责任强制保险责任限额范围内予以赔偿',
      '机动车与非机动车驾驶人行人之间发生交通事故非机动车驾驶人行人没有过错的由机动车一方承担赔偿责任',
      '交通事故后逃逸的处三年以下有期徒刑或者拘役', '侵害他人造成人身损害的应当赔偿医疗费护理费交通费误工费等',
    ],
    remedies: ['申请交警部门调解', '向人民法院提起诉讼', '向保险公司申请理赔', '申请伤残鉴定', '申请先行垫付'],
    evidence: ['事故认定书', '医疗费发票', '病历', '误工证明', '行车记录仪视频'],
  },
  {
    parties: ['商家', '网店', '4S店', '健身房', '培训机构', '美容院', '快递公司'],
    situations: [
      '{p}卖假货', '{p}不退预付卡余额', '网购七天无理由退货{p}不同意', '{p}虚假宣传', '买到过期食品', '{p}跑路了',
      '新车有质量问题{p}不换', '{p}霸王条款', '快递丢件{p}不赔', '{p}售后不给修', '{p}捆绑销售', '直播间买到假货',
      '{p}大数据杀熟', '外卖吃出异物',
    ],
    endings: ['怎么维权', '能退一赔三吗', '怎么办', '能要求十倍赔偿吗', '向哪里投诉', '合法吗', '怎么赔偿', '能退款吗'],
    details: [
      '{when}在{p}花了{money}', '{p}说不能退', '商品页面写的是正品', '办卡时{p}承诺随时可退', '我有购物小票',
      '已经用了{n}次', '{p}客服一直推脱', '收货后发现质量问题',
    ],
    laws: ['消费者权益保护法', '食品安全法', '产品质量法', '电子商务法'],
    rules: [
      '经营者提供商品或者服务有欺诈行为的应当按照消费者的要求增加赔偿其受到的损失增加赔偿的金额为购买商品的价款或者接受服务的费用的三倍',
      '生产不符合食品安全标准的食品消费者可以要求支付价款十倍的赔偿金', '经营者采用网络方式销售商品消费者有权自收到商品之日起七日内退货且无需说明理由',
      '经营者不得以格式条款作出排除或者限制消费者权利的规定',
    ],
    remedies: ['拨打12315投诉', '向市场监督管理局举报', '向消费者协会投诉', '向人民法院提起诉讼', '向平台申请介入'],
    evidence: ['购物小票', '订单截图', '聊天记录', '商品照片', '付款记录'],
  },
  {
    parties: ['开发商', '卖方', '中介', '买方', '银行'],
    situations: [
      '{p}延期交房', '二手房{p}违约不卖了', '定金{p}不退', '{p}一房二卖', '购房合同面积缩水', '{p}不给办房产证',
      '小产权房买卖', '二手房过户税费谁出', '{p}隐瞒房屋抵押', '房屋质量问题{p}不修', '贷款没批下来定金能退吗', '学区房名额被占用',
    ],
    endings: ['怎么办', '能退吗', '违约金怎么算', '需要承担什么责任', '合法吗', '可以解除合同吗', '怎么维权', '能起诉吗'],
    details: [
      '{when}签了购房合同', '交了{money}定金', '约定{n}个月内交房', '{p}说房价涨了', '合同里写了违约条款',
      '房子已经住了{n}年', '{p}一直拖着不办手续',
    ],
    laws: ['民法典', '城市房地产管理法', '商品房销售管理办法', '不动产登记暂行条例'],
    rules: [
      '给付定金的一方不履行债务的无权请求返还定金收受定金的一方不履行债务的应当双倍返还定金',
      '出卖人迟延交付房屋经催告后在三个月的合理期限内仍未履行的买受人可以请求解除合同', '不动产物权的设立变更转让和消灭经依法登记发生效力',
      '房屋套内建筑面积误差比绝对值超出百分之三的买受人有权退房',
    ],
    remedies: ['向住建部门投诉', '向人民法院起诉要求继续履行合同', '与开发商协商赔偿', '申请仲裁'],
    evidence: ['购房合同', '定金收据', '付款凭证', '聊天记录', '房产证'],
  },
  {
    parties: ['物业', '邻居', '楼上邻居', '业委会', '开发商'],
    situations: [
      '{p}漏水不赔', '不交物业费{p}停水停电', '{p}噪音扰民', '{p}占用公共通道', '小区车辆被刮{p}负责吗', '高空抛物砸坏车',
      '{p}乱收停车费', '{p}私搭乱建', '电梯坏了{p}不修', '{p}养狗咬人', '{p}装修影响采光', '公共收益{p}不公开',
    ],
    endings: ['谁负责', '怎么办', '合法吗', '可以拒交物业费吗', '怎么赔偿', '向哪里投诉', '能起诉吗', '怎么处理'],
    details: [
      '{when}家里天花板开始渗水', '已经找过{p}{n}次了', '{p}说不归他们管', '每月物业费{money}', '小区住了{n}年',
      '拍了视频作为证据', '{p}态度很差',
    ],
    laws: ['民法典', '物业管理条例', '治安管理处罚法'],
    rules: [
      '物业服务人不得采取停止供电供水供热供燃气等方式催交物业费', '不动产的相邻权利人应当按照有利生产方便生活团结互助公平合理的原则正确处理相邻关系',
      '从建筑物中抛掷物品造成他人损害的由侵权人依法承担侵权责任', '饲养的动物造成他人损害的动物饲养人或者管理人应当承担侵权责任',
    ],
    remedies: ['向街道办投诉', '向住建部门投诉', '报警处理', '向人民法院起诉', '申请人民调解'],
    evidence: ['照片', '视频', '维修记录', '物业缴费凭证', '报警回执'],
  },
  {
    parties: ['骗子', '网友', '客服', '投资平台', '对方'],
    situations: [
      '被{p}网络诈骗', '刷单被骗', '{p}冒充公检法', '投资理财被骗', '{p}以结婚为名骗钱', '银行卡被{p}冒用',
      '被骗的钱能追回吗', '帮{p}取现算犯罪吗', '出借银行卡给{p}', '{p}盗用我的身份证贷款', '游戏账号交易被骗', '杀猪盘被骗',
    ],
    endings: ['怎么办', '能追回吗', '要坐牢吗', '怎么报警', '算诈骗罪吗', '需要承担什么责任', '怎么立案', '有什么后果'],
    details: [
      '{when}被{p}骗了{money}', '{p}让我先转账', '对方已经把我拉黑了', '我已经报警了', '转了{n}次钱',
      '{p}说是平台客服', '保留了转账截图',
    ],
    laws: ['刑法', '反电信网络诈骗法', '治安管理处罚法'],
    rules: [
      '诈骗公私财物数额较大的处三年以下有期徒刑拘役或者管制并处或者单处罚金', '明知他人利用信息网络实施犯罪为其提供支付结算等帮助情节严重的构成帮助信息网络犯罪活动罪',
      '公安机关接到报案应当及时受理', '被害人的合法财产应当及时返还',
    ],
    remedies: ['立即拨打110报警', '拨打96110反诈专线', '联系银行冻结账户', '向公安机关报案', '向人民法院提起诉讼'],
    evidence: ['转账记录', '聊天记录', '对方账号信息', '通话记录', '报案回执'],
  },
];

const PREFIXES = ['', '', '', '请问', '你好，', '律师你好，', '咨询一下，', '想问一下，', '急！', '求助：'];
const CLOSINGS = ['我该怎么办？', '请问该怎么处理？', '想知道法律上怎么规定。', '谢谢律师！', '求专业人士解答。', '', ''];
const WHEN = ['去年', '今年年初', '上个月', '前几天', '昨天', '三年前', '春节前', '上周'];
/** Circumstances some titles start with. */
const QUALIFIERS = ['农村', '在外地', '{when}', '口头约定', '没有书面合同', '疫情期间', '外地户口', '退休后', '{n}年前', '刚毕业', '网上', '春节期间'];
const DIGITS = ['一', '两', '三', '四', '五', '六', '七', '八', '九', '十'];
const ADVICE = ['建议您', '您可以', '可以先', '建议尽快'];
/** Questions no legal entry answers (exported for bench:kb's score spread). */
export const UNRELATED = [
  '今天天气怎么样', '推荐几部好看的电影', '红烧肉怎么做才好吃', '帮我写一首关于春天的诗', '北京到上海的高铁要多久',
  '猫咪不吃饭是怎么回事', 'What is the capital of France?', '1+1等于几', '周末去哪里玩比较好', '手机充不进电怎么办',
  '如何学好英语', '哈哈哈😂😂', '最近有什么好听的歌', '怎么减肥最快', '你是谁', '今天股市行情如何', '宝宝发烧38度怎么办',
  '晚上失眠睡不着', '写一段Python代码', '世界上最高的山是哪座',
];
/** Words users swap for one another; questions rephrase titles with them. */
const SYNONYMS: [string, string][] = [
  ['公司', '单位'], ['老板', '公司'], ['补偿', '赔偿'], ['怎么办', '该怎么处理'], ['房东', '房主'], ['老公', '丈夫'],
  ['妻子', '老婆'], ['能', '可以'], ['不还', '一直不还'], ['合法吗', '是不是违法'], ['起诉', '告他'], ['赔偿', '赔钱'],
  ['借钱', '借款'], ['辞退', '开除'], ['押金', '定金'], ['工资', '薪水'], ['怎么维权', '怎么投诉'], ['继承', '分遗产'],
];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[uniformInt(rng, 0, xs.length - 1)]!;
}

/** Two different items. */
function pickTwo<T>(rng: Rng, xs: readonly T[]): [T, T] {
  const i = uniformInt(rng, 0, xs.length - 1);
  const j = (i + uniformInt(rng, 1, xs.length - 1)) % xs.length;
  return [xs[i]!, xs[j]!];
}

function chance(rng: Rng, p: number): boolean {
  return uniformInt(rng, 0, 999) < p * 1000;
}

function money(rng: Rng): string {
  return pick(rng, [`${uniformInt(rng, 1, 9)}千元`, `${uniformInt(rng, 1, 50)}万元`, `${uniformInt(rng, 2, 99) * 100}元`, `${pick(rng, DIGITS)}万块`]);
}

function fill(rng: Rng, template: string, party: string): string {
  return template
    .replaceAll('{p}', party)
    .replaceAll('{n}', () => (chance(rng, 0.5) ? pick(rng, DIGITS) : String(uniformInt(rng, 1, 12))))
    .replaceAll('{money}', () => money(rng))
    .replaceAll('{when}', () => pick(rng, WHEN));
}

/** `n` knowledge-base entries with unique ids (`gen-<seed>-<i>`). */
export function generateKnowledgeBase(n: number, seed = 42): KnowledgeEntry[] {
  const rng = xoroshiro128plus(seed);
  const entries: KnowledgeEntry[] = [];
  for (let i = 0; i < n; i++) {
    const topic = pick(rng, TOPICS);
    const party = pick(rng, topic.parties);
    const situation = fill(rng, pick(rng, topic.situations), party);
    // A situation that is already a question (…吗) needs no ending.
    const ending = situation.endsWith('吗') ? '' : pick(rng, topic.endings);
    const qualifier = chance(rng, 0.3) ? fill(rng, pick(rng, QUALIFIERS), party) : '';
    const title = `${qualifier}${situation}${ending}`;

    const first = pick(rng, topic.details);
    const sentences = [fill(rng, first, party)];
    if (chance(rng, 0.5)) {
      const second = pick(rng, topic.details);
      if (second !== first) sentences.push(fill(rng, second, party));
    }
    if (chance(rng, 0.6)) sentences.push(chance(rng, 0.5) ? `${situation}${ending}？` : pick(rng, CLOSINGS) || `${ending || '怎么办'}？`);
    // Like lawzhidao, some entries have no question text beyond the title.
    const question = chance(rng, 0.15) ? '' : sentences.join('，').replace(/[^？。！]$/, (last) => `${last}。`);

    const reply = [
      `根据《${pick(rng, topic.laws)}》第${uniformInt(rng, 1, 300)}条的规定，${pick(rng, topic.rules)}。`,
      `${pick(rng, ADVICE)}${pick(rng, topic.remedies)}。`,
      ...(chance(rng, 0.7) ? [`同时注意保留${pickTwo(rng, topic.evidence).join('和')}等证据。`] : []),
      ...(chance(rng, 0.4) ? [`如协商不成，还可以${pick(rng, topic.remedies)}。`] : []),
    ].join('');
    entries.push({ id: `gen-${seed}-${i}`, title, question, reply });
  }
  return entries;
}

function rephrase(rng: Rng, text: string): string {
  let out = text;
  for (let swaps = 0; swaps < 2; swaps++) {
    const [a, b] = pick(rng, SYNONYMS);
    if (out.includes(a)) out = out.replace(a, b);
  }
  return out;
}

/** Questions users might ask: mostly rephrasings of entries' titles/questions, ~10% unrelated. */
export function generateQuestions(entries: readonly KnowledgeEntry[], n: number, seed = 7): string[] {
  const rng = xoroshiro128plus(seed);
  const questions: string[] = [];
  for (let i = 0; i < n; i++) {
    if (entries.length === 0 || chance(rng, 0.1)) {
      questions.push(pick(rng, UNRELATED));
      continue;
    }
    const entry = entries[uniformInt(rng, 0, entries.length - 1)]!;
    const sentences = entry.question.split(/[，。？！]/).filter((s) => s.length > 0);
    const form = uniformInt(rng, 0, 4);
    let q: string;
    if (form === 0 || sentences.length === 0) q = entry.title;
    else if (form === 1) q = rephrase(rng, entry.title);
    else if (form === 2) q = `${pick(rng, sentences)}，${rephrase(rng, entry.title)}`;
    else if (form === 3) q = rephrase(rng, entry.question);
    else {
      const closing = pick(rng, CLOSINGS) || '怎么办？';
      q = `${pick(rng, sentences.filter((s) => !closing.startsWith(s))) ?? entry.title}，${closing}`;
    }
    questions.push(`${pick(rng, PREFIXES)}${q}${chance(rng, 0.5) && !/[？?。！]$/.test(q) ? pick(rng, ['？', '?', '。', '']) : ''}`);
  }
  return questions;
}
